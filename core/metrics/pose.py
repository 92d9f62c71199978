"""Pose consistency (EG3D's "Depth / pose" row, small-world version): re-estimate each view's camera from its depth.

A view's depth map (ray distance t, core/eg3d's image_depth) and foreground mask are lifted to camera-frame points
P_c = t K^-1 [u, v, 1] / |K^-1 [u, v, 1]| (OpenCV camera frame: x right, y down, z forward). The camera is searched
on EG3D's orbit (on the sphere of `radius` around the world origin, looking at `pivot`, core/eg3d/sampling.py's
view_label), so a pose is (yaw, pitch) plus a small translation t of the head (identities differ in size and place):

    X_w(yaw, pitch) = R(yaw, pitch) P_c + o(yaw, pitch)          residual r_i = template_sdf(X_w,i - t)

The "known head geometry" is a set of `TEMPLATE_SIZE[world]` world heads of held-apart seeds (heads of the world the
model was trained on); the head is also allowed a translation t (|t| <= 0.1 per axis) and a per-axis scale s about the
pivot (0.82 .. 1.22), both bounded smoothly through tanh (8 parameters).
For each template head the cost sum_i huber(r_i) is minimised from the best start of a coarse (yaw, pitch) grid by
Gauss-Newton / Levenberg-Marquardt (IRLS Huber weights, central-difference Jacobian); the template head that fits
best gives the pose. With the rendered head's own SDF as template the estimate is exact (tests); with other heads of
the world the identity mismatch leaves a floor, measured on ground-truth renders and reported beside the model.
The pose error of a view is the angle between the estimated and the true camera directions seen from the origin
(degrees), with yaw and pitch errors reported apart.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..cameras import FFHQ_FOV_DEG, FFHQ_PIVOT, FFHQ_RADIUS, Cameras, orbit_cam2world

__all__ = [
    "TEMPLATE_SIZE",
    "TEMPLATE_SEED",
    "HeadTemplate",
    "camera_points",
    "estimate_pose",
    "estimate_pose_best",
    "pose_errors",
    "generator_pose_error",
    "world_pose_floor",
]

TEMPLATE_SIZE = {"heads": 8, "heads2": 16}  # heads2 needs more: five hair styles, glasses (floor 7.8 deg with 8)
TEMPLATE_SEED = 900_000  # template heads use seeds TEMPLATE_SEED .. + TEMPLATE_SIZE - 1 (never in made datasets)


class HeadTemplate:
    """Mean SDF of a batch of heads: (k, 3) world points -> (k,). `members()`: one template per head."""

    def __init__(self, world: str = "heads", size: int | None = None, start: int = TEMPLATE_SEED, scene=None):
        from ..worlds.head_worlds import head_sampler

        if scene is not None:  # an exact geometry (e.g. the very head rendered: tests)
            self.world, self.scene, self.size = "given", scene, len(scene)
            return
        sample = head_sampler(world, "pose template")
        self.world = world
        size = TEMPLATE_SIZE[world] if size is None else size
        self.scene = sample(size, start=start).scene
        self.size = size

    def members(self) -> list["HeadTemplate"]:
        return [HeadTemplate(scene=self.scene[k]) for k in range(self.size)]

    def __call__(self, points: Float[Tensor, "k 3"]) -> Float[Tensor, " k"]:
        k = points.shape[0]
        idx = torch.arange(self.size).repeat_interleave(k)
        return self.scene.distance(points.repeat(self.size, 1), idx).reshape(self.size, k).mean(0)


def camera_points(
    depth: Float[Tensor, "h w"], mask: Bool[Tensor, "h w"], intrinsics: Float[Tensor, "3 3"], max_points: int = 600
) -> Float[Tensor, "p 3"]:
    """Camera-frame points of the foreground pixels (a deterministic, evenly strided subset of at most max_points)."""
    h, w = depth.shape
    cam = Cameras(torch.eye(4)[None], intrinsics[None].float())
    d = cam.rays(h, w).directions[0]  # (h*w, 3) unit camera-frame directions (identity cam2world)
    sel = mask.reshape(-1).nonzero().squeeze(1)
    if sel.numel() > max_points:
        sel = sel[torch.linspace(0, sel.numel() - 1, max_points).round().long()]
    return d[sel] * depth.reshape(-1)[sel, None]


NPARAM = 8  # yaw, pitch, translation (3), log scale (3)
MAX_SHIFT = 0.1  # |t| per axis (world units): t = MAX_SHIFT tanh(theta[2:5])
MAX_LOG_SCALE = 0.2  # |log s| per axis: log s = MAX_LOG_SCALE tanh(theta[5:8]) (scales 0.82 .. 1.22)


def _shift_scale(theta: Tensor) -> tuple[Tensor, Tensor]:
    """Bounded translation (m, 3) and log scale (m, 3) of the (m, 8) parameters (a smooth box: no degenerate fits)."""
    return MAX_SHIFT * torch.tanh(theta[:, 2:5]), MAX_LOG_SCALE * torch.tanh(theta[:, 5:8])


def _world(theta: Tensor, pc: Tensor, radius: float, pivot) -> Tensor:
    """(m, 8) params x (p, 3) camera points -> (m, p, 3) template-frame points: ((X_w - pivot - t) / s + pivot)."""
    c2w = orbit_cam2world(theta[:, 0], theta[:, 1], radius, pivot=pivot, center=(0.0, 0.0, 0.0))
    x = pc[None] @ c2w[:, :3, :3].transpose(1, 2) + c2w[:, None, :3, 3]
    piv = torch.as_tensor(pivot, dtype=x.dtype)
    t, log_s = _shift_scale(theta)
    return (x - piv - t[:, None]) * torch.exp(-log_s[:, None]) + piv


def _residuals(template, theta: Tensor, pc: Tensor, radius: float, pivot) -> Tensor:
    m, p = theta.shape[0], pc.shape[0]
    d = template(_world(theta, pc, radius, pivot).reshape(-1, 3)).reshape(m, p)
    return d * torch.exp(_shift_scale(theta)[1].mean(1, keepdim=True))


def _huber_weights(r: Tensor, delta: float) -> Tensor:
    a = r.abs()
    return torch.where(a <= delta, torch.ones_like(a), delta / a.clamp(min=1e-12))


def _huber(r: Tensor, delta: float) -> Tensor:
    a = r.abs()
    return torch.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta)).sum(-1)


@torch.no_grad()
def estimate_pose(
    points: Float[Tensor, "p 3"],
    template: HeadTemplate,
    radius: float = FFHQ_RADIUS,
    pivot=FFHQ_PIVOT,
    iterations: int = 15,
    delta: float = 0.01,
    yaw_grid_deg: tuple[float, float, float] = (-90.0, 90.0, 10.0),
    pitch_grid_deg: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0),
) -> dict[str, float]:
    """(yaw, pitch) in radians of the orbit camera that best puts the camera-frame `points` on the template."""
    pc = points.float()
    lo, hi, step = yaw_grid_deg
    yaws = torch.arange(lo, hi + 1e-6, step)
    grid = torch.cartesian_prod(yaws, torch.tensor(pitch_grid_deg)).deg2rad()
    starts = torch.cat([grid, torch.zeros(grid.shape[0], NPARAM - 2)], 1)
    cost = _huber(_residuals(template, starts, pc, radius, pivot), delta)
    theta = starts[cost.argmin()].clone()
    lam, eps = 1e-3, torch.tensor([1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    r = _residuals(template, theta[None], pc, radius, pivot)[0]
    best = _huber(r, delta).item()
    for _ in range(iterations):
        probes = torch.cat([theta + torch.diag(eps), theta - torch.diag(eps)])
        rp = _residuals(template, probes, pc, radius, pivot)
        jac = ((rp[:NPARAM] - rp[NPARAM:]) / (2 * eps[:, None])).T  # (p, NPARAM)
        w = _huber_weights(r, delta)
        jtj = jac.T @ (w[:, None] * jac)
        jtr = jac.T @ (w * r)
        improved = False
        for _ in range(6):
            step_ = torch.linalg.solve(jtj + lam * torch.diag(jtj.diagonal() + 1e-9), -jtr)
            cand = theta + step_
            rc = _residuals(template, cand[None], pc, radius, pivot)[0]
            c = _huber(rc, delta).item()
            if c < best:
                theta, r, best, lam, improved = cand, rc, c, max(lam / 3, 1e-6), True
                break
            lam *= 10
        if not improved or step_.abs().max() < 1e-6:
            break
    t, log_s = _shift_scale(theta[None])
    return {
        "yaw": float(theta[0]),
        "pitch": float(theta[1]),
        "translation": t[0].tolist(),
        "scale": log_s[0].exp().tolist(),
        "cost": best,
    }


def estimate_pose_best(points: Float[Tensor, "p 3"], templates: list[HeadTemplate], **kwargs) -> dict[str, float]:
    """estimate_pose against each template; the lowest-cost fit wins (its index in "template")."""
    fits = [estimate_pose(points, t, **kwargs) for t in templates]
    k = min(range(len(fits)), key=lambda i: fits[i]["cost"])
    return {**fits[k], "template": k}


def pose_errors(yaw_est, pitch_est, yaw_true, pitch_true) -> dict[str, float]:
    """Mean angle (deg) between estimated and true camera directions from the origin, and mean |dyaw|, |dpitch|."""

    def direction(y, p):
        y, p = torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(p, dtype=torch.float64)
        return torch.stack([p.cos() * y.sin(), p.sin(), p.cos() * y.cos()], -1)

    cos = (direction(yaw_est, pitch_est) * direction(yaw_true, pitch_true)).sum(-1).clamp(-1, 1)
    dy = (torch.as_tensor(yaw_est, dtype=torch.float64) - torch.as_tensor(yaw_true, dtype=torch.float64)).abs()
    dp = (torch.as_tensor(pitch_est, dtype=torch.float64) - torch.as_tensor(pitch_true, dtype=torch.float64)).abs()
    return {
        "pose_error_deg": float(torch.rad2deg(torch.arccos(cos)).mean()),
        "yaw_error_deg": float(torch.rad2deg(dy).mean()),
        "pitch_error_deg": float(torch.rad2deg(dp).mean()),
    }


@torch.no_grad()
def generator_pose_error(
    G,
    seeds: list[int],
    world: str = "heads",
    yaws_deg=(-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0),
    pitches_deg=(-10.0, 10.0),
    truncation_psi: float = 0.7,
    resolution: int | None = None,
    opacity_threshold: float = 0.5,
) -> dict:
    """Render each seed at every (yaw, pitch) (deterministic), re-estimate the pose from depth, report the errors."""
    from ..eg3d.sampling import conditioning_label, raw_views, view_label, z_from_seeds

    templates = HeadTemplate(world).members()
    rk = G.rendering_kwargs
    pivot, radius = rk.get("avg_camera_pivot", list(FFHQ_PIVOT)), float(rk.get("avg_camera_radius", FFHQ_RADIUS))
    dev = next(G.parameters()).device
    pairs = [(math.radians(y), math.radians(p)) for y in yaws_deg for p in pitches_deg]
    yt = torch.tensor([a for a, _ in pairs])
    pt = torch.tensor([b for _, b in pairs])
    labels = view_label(G, yt, pt, FFHQ_FOV_DEG).to(dev)
    est_y, est_p, true_y, true_p = [], [], [], []
    for s in seeds:
        z = z_from_seeds([s], G.z_dim).to(dev)
        ws = G.mapping(z, conditioning_label(G, 1).to(dev), truncation_psi=truncation_psi)
        planes = G.synthesis_planes(ws)
        r = raw_views(G, planes, Cameras.from_label(labels), resolution)
        depth, mask = r["image_depth"][:, 0].cpu(), (r["image_opacity"][:, 0] > opacity_threshold).cpu()
        intr = Cameras.from_label(labels.cpu()).intrinsics
        for i in range(len(pairs)):
            if int(mask[i].sum()) < 20:
                continue
            e = estimate_pose_best(camera_points(depth[i], mask[i], intr[i]), templates, radius=radius, pivot=pivot)
            est_y.append(e["yaw"])
            est_p.append(e["pitch"])
            true_y.append(float(yt[i]))
            true_p.append(float(pt[i]))
    if not est_y:
        return {"pose_error_deg": math.nan, "yaw_error_deg": math.nan, "pitch_error_deg": math.nan, "views": 0}
    out = pose_errors(est_y, est_p, true_y, true_p)
    out["views"] = len(est_y)
    out["template"] = f"{world}: best of seeds {TEMPLATE_SEED}..{TEMPLATE_SEED + TEMPLATE_SIZE[world] - 1}"
    return out


@torch.no_grad()
def world_pose_floor(
    world: str = "heads", seeds=(50, 51), yaws_deg=(-60.0, -30.0, 0.0, 30.0, 60.0), pitches_deg=(-8.0, 12.0), res=32
) -> dict:
    """The metric's floor: pose error of ground-truth world renders against the (other) template heads."""
    from ..worlds import render, sample_heads
    from ..worlds.heads2 import sample_heads2

    templates = HeadTemplate(world).members()
    heads = (sample_heads if world == "heads" else sample_heads2)(list(seeds))
    pairs = [(math.radians(y), math.radians(p)) for y in yaws_deg for p in pitches_deg]
    yt, pt = torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs])
    cams = Cameras.orbit(yt, pt, radius=FFHQ_RADIUS, fov_deg=FFHQ_FOV_DEG, pivot=FFHQ_PIVOT, center=(0.0, 0.0, 0.0))
    ey, ep, ty, tp = [], [], [], []
    for b in range(len(heads.seeds)):
        out = render(heads.scene[[b] * len(pairs)], cams, res)
        for i in range(len(pairs)):
            e = estimate_pose_best(camera_points(out.depth[i], out.mask[i], cams.intrinsics[i]), templates)
            ey.append(e["yaw"])
            ep.append(e["pitch"])
            ty.append(float(yt[i]))
            tp.append(float(pt[i]))
    return {**pose_errors(ey, ep, ty, tp), "views": len(ey)}
