"""Mesh export for any density field: sample the density on a grid over a box, marching cubes at a level, colour the
vertices from a colour function, save by file extension (.ply / .obj / .glb) with trimesh.

    mesh = extract_mesh(density_fn, level=5.0, color_fn=albedo_fn, bound=0.5, resolution=128)
    save_mesh(mesh, "out/model.glb")

density_fn / color_fn take world points (1, P, 3) and return (1, P, 1) densities / (1, P, 3) colours in [0, 1].
Grids are (R, R, R, 4) float32 [z][y][x] with the raw density in channel 3 and voxel centres at
((i + 0.5) / R - 1/2) * box side (`voxel_centres`), the layout core/eg3d/bake.py bakes tri-planes into.
`mesh_from_grid` is the one marching cubes of the code base (EG3D and DreamFusion alike): it pads the grid so the
surface closes at the box's faces.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from .io.atomic import atomic_path

__all__ = [
    "colored_mesh",
    "density_grid",
    "extract_mesh",
    "mesh_from_grid",
    "save_mesh",
    "voxel_centres",
    "MESH_FORMATS",
]

MESH_FORMATS = (".ply", ".obj", ".glb")
PointFn = Callable[[Tensor], Tensor]


def voxel_centres(resolution: int, box_warp: float = 1.0) -> Float[Tensor, " r"]:
    """World coordinates of the voxel centres along one axis."""
    return ((torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution - 0.5) * box_warp


def mesh_from_grid(grid: Tensor | np.ndarray, level: float, box_warp: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes on the raw density channel at `level` (EG3D's shape extraction uses 10).

    Returns world-space vertices (V, 3) float32 and faces (F, 3) int64. Raises ValueError with the density range if
    the level is never crossed."""
    from skimage import measure

    sigma = np.asarray(grid[..., 3], dtype=np.float32)  # [z][y][x]
    lo, hi = float(sigma.min()), float(sigma.max())
    if not lo < level < hi:
        raise ValueError(
            f"mesh: density level {level:g} is outside the field's range [{lo:.3g}, {hi:.3g}]; pick a level inside it"
        )
    # Pad with a low value so the surface closes at the box's faces.
    padded = np.pad(sigma, 1, mode="constant", constant_values=min(lo, level - 1.0))
    verts_zyx, faces, _, _ = measure.marching_cubes(padded, level=level)
    r = sigma.shape[0]
    verts = ((verts_zyx[:, ::-1] - 1.0 + 0.5) / r - 0.5) * box_warp  # padded index -> voxel centre -> world
    # (skimage's winding already gives outward normals, positive volume, after the (z, y, x) -> (x, y, z) swap.)
    return verts.astype(np.float32), faces.astype(np.int64)


@torch.no_grad()
def density_grid(
    density_fn: PointFn,
    bound: float,
    resolution: int,
    device=None,
    slices_per_call: int = 8,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """(R, R, R, 4) float32 grid [z][y][x] with the density in channel 3 (RGB unused, zero); `progress(fraction)`
    after each call."""
    r = int(resolution)
    axis = voxel_centres(r, 2 * bound).to(device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (r, r): [y][x]
    grid = np.zeros((r, r, r, 4), dtype=np.float32)
    for z0 in range(0, r, slices_per_call):
        zs = axis[z0 : z0 + slices_per_call]
        k = zs.shape[0]
        pts = torch.stack([xx.expand(k, r, r), yy.expand(k, r, r), zs[:, None, None].expand(k, r, r)], dim=-1)
        sigma = density_fn(pts.reshape(1, -1, 3))  # (1, k r r, 1)
        grid[z0 : z0 + k, ..., 3] = sigma.reshape(k, r, r).float().cpu().numpy()
        if progress is not None:
            progress((z0 + k) / r)
    return grid


@torch.no_grad()
def extract_mesh(
    density_fn: PointFn,
    level: float,
    color_fn: PointFn | None = None,
    bound: float = 0.5,
    resolution: int = 128,
    device=None,
    chunk: int = 65536,
    progress: Callable[[float], None] | None = None,
):
    """A trimesh.Trimesh of the iso-surface density = level inside [-bound, bound]^3, with vertex colours (RGBA
    uint8) from color_fn (white without one). Raises ValueError naming the density range if level is never crossed."""
    grid = density_grid(density_fn, bound, resolution, device, progress=progress)
    verts, faces = mesh_from_grid(grid, level, 2 * bound)  # (V, 3) world, (F, 3)
    rgb = None
    if color_fn is not None and len(verts):
        pts = torch.as_tensor(verts, device=device)
        rgb = torch.cat([color_fn(pts[None, i : i + chunk])[0, :, :3] for i in range(0, len(pts), chunk)])
        rgb = rgb.clamp(0, 1).float().cpu().numpy()
    return colored_mesh(verts, faces, rgb)


def colored_mesh(
    verts: Float[np.ndarray, "v 3"], faces: Int[np.ndarray, "f 3"], rgb: Float[np.ndarray, "v 3"] | None = None
):
    """A trimesh.Trimesh with RGBA uint8 vertex colours from rgb in [0, 1] (white without it), vertices as given."""
    import trimesh

    rgba = np.full((len(verts), 4), 255, dtype=np.uint8)
    if rgb is not None:
        rgba[:, :3] = (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return trimesh.Trimesh(vertices=verts, faces=faces, vertex_colors=rgba, process=False)


def save_mesh(mesh, path: str | os.PathLike) -> Path:
    """Write a mesh as .ply, .obj or .glb (chosen by the extension), atomically."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in MESH_FORMATS:
        raise ValueError(
            f"unsupported mesh format {ext or '(none)'!r} for {path}; use one of {', '.join(MESH_FORMATS)}"
        )
    with atomic_path(path, suffix=ext) as tmp:
        mesh.export(str(tmp), file_type=ext[1:])
    return path
