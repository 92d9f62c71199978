"""Exports of an optimised DreamFusion scene: preview grids, an orbit video, a vertex-coloured mesh.

grid = preview_grid(df, resolution=64)                    # (H, W, 3) uint8: 4 views x (shaded, normals)
write_orbit_video(df, "run/orbit.mp4", frames=60, resolution=128)
mesh = export_mesh(df, "run/mesh.glb", resolution=96)      # marching cubes at `level` (auto: see mesh_level)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..io.images import make_grid, to_uint8
from ..io.video import write_video
from ..mesh import extract_mesh, save_mesh
from .views import orbit_views

__all__ = ["preview_grid", "render_orbit", "write_orbit_video", "mesh_level", "export_mesh"]


@torch.no_grad()
def render_orbit(
    df, n: int, resolution: int, shading: str = "lambertian", elevation_deg: float = 15.0, batch: int = 4
) -> dict[str, torch.Tensor]:
    """n views evenly spaced in azimuth from the front: {"image", "opacity", "normal"} (n, C, R, R) in [0, 1]."""
    cams = orbit_views(n, elevation_deg=elevation_deg)
    outs = [df.render(cams[i : i + batch], resolution, shading) for i in range(0, n, batch)]
    return {k: torch.cat([o[k] for o in outs]) for k in ("image", "opacity", "normal")}


def preview_grid(df, resolution: int = 64) -> np.ndarray:
    """Front / side / back / side views: shaded on the first row, normals (as colours) on the second."""
    out = render_orbit(df, 4, resolution)
    normals = (out["normal"] * 0.5 + 0.5) * out["opacity"]  # unit normals -> colours, black off the object
    images = torch.cat([out["image"], normals])  # (8, 3, R, R)
    return make_grid(to_uint8(images, (0.0, 1.0)), cols=4, pad=2)


def write_orbit_video(
    df, path: str | os.PathLike, frames: int = 60, resolution: int = 128, fps: int = 30, shading: str = "lambertian"
) -> Path:
    """A full turn around the object as an H.264 MP4 (core/io/video.py)."""
    resolution = int(math.ceil(resolution / 16) * 16)  # macro blocks

    cams = orbit_views(frames)

    def gen():
        for i in range(frames):
            with torch.no_grad():
                yield to_uint8(df.render(cams[i], resolution, shading)["image"], (0.0, 1.0))[0]

    return write_video(path, gen(), fps=fps)


@torch.no_grad()
def mesh_level(df, resolution: int = 64, default: float = 10.0) -> float:
    """The density iso-level for meshing: `default`, or half the field's peak density if that is lower; if that is not
    inside the field's range (e.g. a young field dense everywhere), the middle of the range."""
    from ..mesh import density_grid

    sigma = density_grid(df.field.density, df.cfg.bound, resolution, df.device)[..., 3]
    lo, peak = float(sigma.min()), float(sigma.max())
    level = default if peak > 2 * default else 0.5 * peak
    return level if lo < level < peak else 0.5 * (lo + peak)


@torch.no_grad()
def export_mesh(
    df, path: str | os.PathLike | None = None, resolution: int = 96, level: float | None = None, progress=None
):
    """Marching cubes of the density at `level` with albedo vertex colours; saved by extension when path is given.
    `progress(fraction)` while the density grid is sampled."""
    level = mesh_level(df, resolution) if level is None else level  # judged on the same grid as the mesh

    def albedo(x):
        return df.field(x)[1]

    mesh = extract_mesh(df.field.density, level, albedo, df.cfg.bound, resolution, df.device, progress=progress)
    if path is not None:
        save_mesh(mesh, path)
    return mesh
