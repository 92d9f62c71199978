"""Baking a tri-plane field into a dense voxel grid (for the viewer's GL ray-marcher and for mesh export, core/mesh.py),
and the generator's mesh: marching cubes of the raw density at a level, by default the level whose silhouette is the
render's (`silhouette_level`).

Grid layout: (R, R, R, 4) float32 indexed [z][y][x] (x fastest, as a GL 3D texture's s, t, r), voxel centres at
world (i + 0.5) / R - 1/2 scaled by box_warp on each axis, i.e. covering the field's box [-box_warp/2, box_warp/2]^3.
Channels: RGB = the decoder's first three feature channels (in (-0.001, 1.001); the renderer's signed output maps
them to [-1, 1] and the display back), A = the *raw* density s (the renderer applies softplus(s - 1)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..cameras import Cameras
from ..mesh import colored_mesh, mesh_from_grid, voxel_centres
from ..render.samplers import ray_box_limits, sample_stratified
from ..render.triplane import triplane_field
from .sampling import raw_views, view_label

__all__ = ["iter_bake_grid", "bake_grid", "field_colors", "silhouette_level", "triplane_mesh"]


@torch.no_grad()
def iter_bake_grid(
    planes: Float[Tensor, "1 3 c h w"],
    decoder,
    resolution: int = 96,
    box_warp: float = 1.0,
    slices_per_step: int = 8,
) -> Iterator[tuple[float, Tensor | None]]:
    """Bake `slices_per_step` z-slices at a time; yields (fraction done, None) and finally (1.0, grid (R,R,R,4)).

    The caller may stop iterating at any yield (the viewer interleaves renders between steps)."""
    if planes.ndim != 5 or planes.shape[0] != 1:
        raise ValueError(f"bake: expected planes (1, 3, C, H, W), got {tuple(planes.shape)}")
    r = int(resolution)
    field = triplane_field(planes, decoder, box_warp)
    axis = voxel_centres(r, box_warp).to(planes.device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (r, r): [y][x]
    grid = torch.empty(r, r, r, 4, dtype=torch.float32)
    for z0 in range(0, r, slices_per_step):
        zs = axis[z0 : z0 + slices_per_step]
        k = zs.shape[0]
        pts = torch.stack([xx.expand(k, r, r), yy.expand(k, r, r), zs[:, None, None].expand(k, r, r)], dim=-1)
        pts = pts.reshape(1, -1, 3)
        out = field(pts, torch.zeros_like(pts))
        grid[z0 : z0 + k, ..., :3] = out["rgb"][0, :, :3].reshape(k, r, r, 3).float().cpu()
        grid[z0 : z0 + k, ..., 3] = out["sigma"][0, :, 0].reshape(k, r, r).float().cpu()
        if z0 + k < r:
            yield (z0 + k) / r, None
    yield 1.0, grid


def bake_grid(
    planes, decoder, resolution: int = 96, box_warp: float = 1.0, progress: Callable[[float], None] | None = None
) -> Float[Tensor, "r r r 4"]:
    """The whole grid at once (see module docstring for its layout)."""
    for frac, grid in iter_bake_grid(planes, decoder, resolution, box_warp):
        if progress is not None:
            progress(frac)
        if grid is not None:
            return grid
    raise AssertionError("unreachable")


@torch.no_grad()
def field_colors(planes, decoder, points: np.ndarray, box_warp: float = 1.0, chunk: int = 65536) -> np.ndarray:
    """RGB in [0, 1] (float32, (P, 3)) of the field at world points (P, 3)."""
    field = triplane_field(planes, decoder, box_warp)
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32), device=planes.device)
    out = []
    for i in range(0, pts.shape[0], chunk):
        p = pts[None, i : i + chunk]
        out.append(field(p, torch.zeros_like(p))["rgb"][0, :, :3].clamp(0, 1).float().cpu())
    return (torch.cat(out).numpy() if out else np.zeros((0, 3), np.float32)).astype(np.float32)


@torch.no_grad()
def silhouette_level(
    G,
    planes: Float[Tensor, "1 3 c h w"],
    resolution: int = 64,
    yaws_deg: tuple[float, ...] = (-40.0, 0.0, 40.0),
    samples: int = 192,
    chunk: int = 1 << 18,
    progress: Callable[[float], None] | None = None,
) -> float:
    """The raw-density level whose iso-surface has the silhouette of the render, seen from `yaws_deg` (pitch 0).

    A ray meets the surface s = L iff the largest raw density s along it (inside the box) exceeds L, so the surface's
    silhouette is {rays: max_t s > L}. The renderer's own silhouette is {rays: opacity > 1/2} (deterministic, no
    super-resolution). Over the M rays, the level is the midpoint between the k-th and (k+1)-th largest maxima, k
    maximising the intersection-over-union of the two silhouettes. Raises ValueError, with the density range to pick
    a level from, when the render draws nothing (opacity <= 1/2 everywhere). `progress(fraction)` after each chunk."""
    box = float(G.rendering_kwargs["box_warp"])
    cameras = Cameras.from_label(view_label(G, torch.tensor(yaws_deg).deg2rad(), 0.0)).to(planes.device)
    opacity = raw_views(G, planes, cameras, resolution)["image_opacity"].reshape(-1)  # (M,) over all views
    drawn = opacity > 0.5
    rays = cameras.rays(resolution)  # origins, directions (n, m, 3)
    near, far, hit = ray_box_limits(rays.origins, rays.directions, box)
    depths = sample_stratified(near, far.clamp_min(near + 1e-6), samples, deterministic=True)  # (n, m, s, 1)
    points = (rays.origins[..., None, :] + depths * rays.directions[..., None, :]).reshape(1, -1, 3)
    field = triplane_field(planes, G.decoder, box)
    chunks, sigma = points.split(chunk, dim=1), []
    for i, p in enumerate(chunks):
        sigma.append(field(p, torch.zeros_like(p))["sigma"][0, :, 0])
        if progress is not None:
            progress((i + 1) / len(chunks))
    peak = torch.cat(sigma).reshape(drawn.shape[0], samples).amax(dim=1)  # (M,) the largest raw density along a ray
    peak = torch.where(hit.reshape(-1), peak, torch.full_like(peak, -torch.inf)).cpu()
    if not drawn.any():
        seen = torch.cat(sigma)
        raise ValueError(
            f"mesh: no automatic level: the render's opacity stays below 1/2 (at most {float(opacity.max()):.2f}); "
            f"give a level in the field's raw density range [{float(seen.min()):.3g}, {float(seen.max()):.3g}]"
        )
    order = torch.argsort(peak, descending=True)
    inside = drawn.cpu()[order].float().cumsum(0)  # rays drawn by the render among the k highest maxima
    k = torch.arange(1, len(peak) + 1, dtype=torch.float32)
    iou = inside / (drawn.sum().cpu() + k - inside)
    best = int(iou[:-1].argmax())  # the surface draws rays order[: best + 1]
    lo, hi = float(peak[order[best + 1]]), float(peak[order[best]])
    return 0.5 * (hi + lo) if np.isfinite(lo) else hi - 1.0


def triplane_mesh(
    planes: Float[Tensor, "1 3 c h w"],
    decoder,
    level: float,
    resolution: int = 128,
    box_warp: float = 1.0,
    progress: Callable[[float], None] | None = None,
):
    """The trimesh.Trimesh of the surface raw density = `level` in world units, vertex colours from the field's RGB
    (marching cubes of a baked `resolution`^3 grid, closed at the box's faces). Raises ValueError naming the field's
    density range when the level is never crossed."""
    grid = bake_grid(planes, decoder, resolution, box_warp, progress)
    verts, faces = mesh_from_grid(grid, level, box_warp)  # (V, 3) world, (F, 3)
    return colored_mesh(verts, faces, field_colors(planes, decoder, verts, box_warp))
