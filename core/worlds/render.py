"""Reference renderer for SDF scenes: sphere tracing (exact depth), SDF-gradient normals, Lambert + ambient shading.

Rays come from `Cameras.rays()` (core/cameras.py: pixel centres, row-major, unit world-space directions), so depth is
the ray distance t from the camera centre, as EG3D's image_depth. The march is bounded to the scene box
[-bound, bound]^3 (EG3D box_warp = 1 -> bound 0.5); rays that miss the box are never marched, and converged or escaped
rays leave the active set at every step (early exit).

Shading (world-fixed light): rgb = albedo * (ambient + diffuse * max(n . l, 0)) + shininess * specular *
max(n . h, 0)^exponent, h the half vector between l and the direction to the eye; composited over a background.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..cameras import Cameras
from .scenes import Scene

__all__ = ["WorldRender", "Shading", "render", "sphere_trace"]


@dataclass
class Shading:
    light_dir: tuple[float, float, float] = (0.4, 1.0, 0.6)  # world-space direction *towards* the light
    ambient: float = 0.35
    diffuse: float = 0.65
    specular: float = 0.6  # scaled by the surface's shininess
    exponent: float = 40.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white, as a cropped photo dataset


@dataclass
class WorldRender:
    rgb: Float[Tensor, "n h w 3"]  # shaded colour in [0, 1], composited over the background (supersampled if asked)
    depth: Float[Tensor, "n h w"]  # ray distance t of the pixel-centre ray; +inf where it misses
    normals: Float[Tensor, "n h w 3"]  # unit world-space normals at the pixel-centre hit; 0 where missed
    mask: Bool[Tensor, "n h w"]  # pixel-centre ray hits the surface
    alpha: Float[Tensor, "n h w"]  # coverage in [0, 1]: the fraction of sub-pixel rays that hit (= mask without SS)
    steps: int  # march iterations used (diagnostics)


def _box_interval(o: Float[Tensor, "k 3"], d: Float[Tensor, "k 3"], bound: float):
    """Slab test against [-bound, bound]^3: entry and exit ray distances (t_near > t_far where missed)."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t0 = (-bound - o) * inv
    t1 = (bound - o) * inv
    t_near = torch.minimum(t0, t1).amax(-1).clamp(min=0)
    t_far = torch.maximum(t0, t1).amin(-1)
    return t_near, t_far


@torch.no_grad()
def sphere_trace(
    scene: Scene,
    origins: Float[Tensor, "k 3"],
    directions: Float[Tensor, "k 3"],
    scene_idx: Int[Tensor, " k"],
    bound: float = 0.5,
    max_steps: int = 128,
    eps: float = 1e-4,
) -> tuple[Float[Tensor, " k"], Bool[Tensor, " k"], int]:
    """March unit rays (world frame) to the surface. Returns (t, hit, steps): t = ray distance of the hit.

    A ray hits when the SDF falls below eps and escapes when t passes its exit from the box; either way it leaves
    the active set (kept compact, so late steps cost only the few rays left). A ray still active after max_steps
    counts as a hit only if its SDF is below eps too. Hits are accurate to ~eps / cos(incidence): `render` refines
    them with Newton steps.
    """
    t_near, t_far = _box_interval(origins, directions, bound + 1e-3)
    t = t_near.clone()
    hit = torch.zeros(origins.shape[0], dtype=torch.bool, device=origins.device)
    act = (t_near < t_far).nonzero().squeeze(1)
    o_a, d_a, i_a = origins.index_select(0, act), directions.index_select(0, act), scene_idx.index_select(0, act)
    t_a, f_a = t_near.index_select(0, act), t_far.index_select(0, act)
    steps = 0
    while act.numel() > 0 and steps < max_steps:
        steps += 1
        dist = scene.distance(torch.addcmul(o_a, t_a[:, None], d_a), i_a)
        t_a = t_a + dist
        converged = dist < eps
        done = converged | (t_a > f_a)
        fin = done.nonzero().squeeze(1)
        if fin.numel() == 0:
            continue
        t.index_copy_(0, act.index_select(0, fin), t_a.index_select(0, fin))
        hit.index_copy_(0, act.index_select(0, fin), converged.index_select(0, fin))
        keep = (~done).nonzero().squeeze(1)
        act, o_a, d_a, i_a, t_a, f_a = (x.index_select(0, keep) for x in (act, o_a, d_a, i_a, t_a, f_a))
    if act.numel() > 0:  # out of steps: accept only the near-converged ones
        t.index_copy_(0, act, t_a)
        dist = scene.distance(torch.addcmul(o_a, t_a[:, None], d_a), i_a)
        hit.index_copy_(0, act, dist.abs() < eps)
    return t, hit, steps


def _refine(
    scene: Scene, o: Float[Tensor, "k 3"], d: Float[Tensor, "k 3"], t: Float[Tensor, " k"], idx: Int[Tensor, " k"]
) -> tuple[Float[Tensor, " k"], Float[Tensor, "k 3"]]:
    """Two Newton steps on f(t) = sdf(o + t d) at converged hits (removes the eps / cos bias of sphere tracing at
    oblique incidence), and the unit SDF gradient (autograd) there as the world-space normal."""
    for _ in range(2):
        with torch.enable_grad():
            p = (o + t[:, None] * d).detach().requires_grad_(True)
            dist = scene.distance(p, idx)
            (grad,) = torch.autograd.grad(dist.sum(), p)
        slope = (grad * d).sum(-1)
        step = torch.where(slope < -0.05, -dist.detach() / slope.clamp(max=-0.05), torch.zeros_like(slope))
        t = t + step.clamp(-1e-3, 1e-3)
    return t, torch.nn.functional.normalize(grad, dim=-1)


def _trace_and_shade(
    scene: Scene,
    o: Float[Tensor, "k 3"],
    d: Float[Tensor, "k 3"],
    idx: Int[Tensor, " k"],
    shading: Shading,
    bound: float,
):
    """Trace world rays and shade the hits: (rgb (k,3) over the background, t (k), normals (k,3), hit (k), steps)."""
    t, hit, steps = sphere_trace(scene, o, d, idx, bound=bound)
    sel = hit.nonzero().squeeze(1)
    normals = torch.zeros_like(d)
    rgb = torch.tensor(shading.background, dtype=d.dtype).expand(d.shape[0], 3).clone()
    if sel.numel() > 0:
        o_s, d_s, i_s = o.index_select(0, sel), d.index_select(0, sel), idx.index_select(0, sel)
        t_s, nrm = _refine(scene, o_s, d_s, t.index_select(0, sel), i_s)
        t.index_copy_(0, sel, t_s)
        with torch.no_grad():
            _, albedo, shine = scene.surface(o_s + t_s[:, None] * d_s, i_s)
            light = torch.nn.functional.normalize(torch.tensor(shading.light_dir, dtype=d.dtype), dim=0)
            lambert = nrm @ light
            half = torch.nn.functional.normalize(light - d_s, dim=-1)
            spec = (nrm * half).sum(-1).clamp(min=0) ** shading.exponent * (lambert > 0)
            color = albedo * (shading.ambient + shading.diffuse * lambert.clamp(min=0))[:, None]
            color = color + (shading.specular * shine * spec)[:, None]
            rgb.index_copy_(0, sel, color.clamp(0, 1))
            normals.index_copy_(0, sel, nrm)
    return rgb, t, normals, hit, steps


def _edge_pixels(rgb: Float[Tensor, "n h w 3"], mask: Bool[Tensor, "n h w"], threshold: float) -> Bool[Tensor, "n h w"]:
    """Pixels whose 3x3 neighbourhood mixes hit and miss, or whose colour range there exceeds `threshold`."""
    x = torch.cat([rgb, mask[..., None].float()], dim=-1).permute(0, 3, 1, 2)  # (n, 4, h, w)
    hi = torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1)
    lo = -torch.nn.functional.max_pool2d(-x, 3, stride=1, padding=1)
    return ((hi - lo) > threshold).any(dim=1)


def render(
    scene: Scene,
    cameras: Cameras,
    resolution: int | tuple[int, int],
    supersample: int = 1,
    shading: Shading | None = None,
    bound: float = 0.5,
    adaptive: bool = True,
    edge_threshold: float = 0.04,
) -> WorldRender:
    """Render scene b with camera b (a single camera or a single scene is broadcast to the other's batch size).

    `resolution`: H (square) or (H, W). depth, normals and mask always come from the exact pixel-centre rays of
    `Cameras.rays(H, W)`. `supersample` = s > 1 anti-aliases `rgb` and `alpha`: the s x s sub-pixel rays of the
    (sH, sW) grid are traced and averaged, for every pixel (`adaptive=False`) or only where the pixel-centre image
    has an edge (its 3x3 neighbourhood mixes hit and miss, or spans more than `edge_threshold` in a colour channel;
    elsewhere the centre sample is kept), which costs a fraction of the full s^2 work.
    """
    shading = shading or Shading()
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    if len(cameras) == 1 and len(scene) > 1:
        cameras = Cameras(cameras.cam2world.expand(len(scene), 4, 4), cameras.intrinsics.expand(len(scene), 3, 3))
    if len(scene) == 1 and len(cameras) > 1:
        scene = scene[[0] * len(cameras)]
    if len(scene) != len(cameras):
        raise ValueError(f"render: {len(scene)} scenes but {len(cameras)} cameras")
    n = len(cameras)
    rays = cameras.rays(height, width)
    idx = torch.arange(n).repeat_interleave(height * width)
    rgb, t, normals, hit, steps = _trace_and_shade(
        scene, rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), idx, shading, bound
    )
    rgb = rgb.reshape(n, height, width, 3)
    mask = hit.reshape(n, height, width)
    alpha = mask.float()
    if supersample > 1:
        s = supersample
        if adaptive:
            todo = _edge_pixels(rgb, mask, edge_threshold).reshape(-1).nonzero().squeeze(1)
        else:
            todo = torch.arange(n * height * width)
        # sub-pixel rays of pixel (b, i, j): rows i*s + a, columns j*s + c of the fine grid, a, c in [0, s)
        fine = cameras.rays(height * s, width * s)
        b, rem = todo // (height * width), todo % (height * width)
        i, j = rem // width, rem % width
        a = torch.arange(s)
        rows = (i[:, None, None] * s + a[None, :, None]).expand(-1, s, s)
        cols = (j[:, None, None] * s + a[None, None, :]).expand(-1, s, s)
        flat = (b[:, None, None] * (height * s * width * s) + rows * (width * s) + cols).reshape(-1)
        o_f = fine.origins.reshape(-1, 3).index_select(0, flat)
        d_f = fine.directions.reshape(-1, 3).index_select(0, flat)
        i_f = b.repeat_interleave(s * s)
        rgb_f, _, _, hit_f, steps_f = _trace_and_shade(scene, o_f, d_f, i_f, shading, bound)
        rgb = rgb.reshape(-1, 3).index_copy(0, todo, rgb_f.reshape(-1, s * s, 3).mean(1)).reshape(n, height, width, 3)
        alpha = alpha.reshape(-1).index_copy(0, todo, hit_f.reshape(-1, s * s).float().mean(1))
        alpha = alpha.reshape(n, height, width)
        steps = max(steps, steps_f)
    depth = torch.where(hit, t, torch.full_like(t, float("inf"))).reshape(n, height, width)
    return WorldRender(
        rgb=rgb, depth=depth, normals=normals.reshape(n, height, width, 3), mask=mask, alpha=alpha, steps=steps
    )
