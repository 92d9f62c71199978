"""Baking a tri-plane field into a dense voxel grid (for the viewer's GL ray-marcher and for mesh export, core/mesh.py).

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

from ..mesh import voxel_centres
from ..render.triplane import triplane_field

__all__ = ["iter_bake_grid", "bake_grid", "field_colors"]


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
