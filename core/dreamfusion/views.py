"""Random training cameras for DreamFusion: azimuth, elevation, radius and field of view drawn per step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras

__all__ = ["ViewRanges", "sample_views"]


@dataclass
class ViewRanges:
    """Defaults: around the objects world's cameras (core/worlds/camera_sampling.py: radius 2.5, diagonal FOV 30 deg,
    elevation -15..75 deg), the framing the small-world prior and CLIP were trained on. DreamFusion's own ranges
    (radius 1-1.5x, FOV 40-70 deg) suit a prior trained on varied framings; with a fixed-framing prior a wide FOV
    range asks for objects of inconsistent size (at FOV 60 and radius 2 a 'sphere' would have to be ~0.56 wide,
    beyond the box)."""

    elevation_deg: tuple[float, float] = (-15.0, 75.0)
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    radius: tuple[float, float] = (2.3, 2.7)
    fov_deg: tuple[float, float] = (27.0, 33.0)  # EG3D's diagonal field of view


def _uniform(lo_hi: tuple[float, float], n: int, gen: torch.Generator) -> Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def sample_views(n: int, ranges: ViewRanges, gen: torch.Generator) -> tuple[Cameras, Tensor, Tensor]:
    """n cameras looking at the origin: (Cameras, yaw (n,), pitch (n,)) with angles in radians."""
    yaw = torch.deg2rad(_uniform(ranges.azimuth_deg, n, gen))
    pitch = torch.deg2rad(_uniform(ranges.elevation_deg, n, gen))
    radius = _uniform(ranges.radius, n, gen)
    fov = _uniform(ranges.fov_deg, n, gen)
    cams = [Cameras.orbit(yaw[i], pitch[i], radius[i], fov_deg=float(fov[i])) for i in range(n)]
    return Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams])), yaw, pitch


def orbit_views(n: int, elevation_deg: float = 15.0, radius: float = 2.5, fov_deg: float = 30.0) -> Cameras:
    """n cameras evenly spaced in azimuth (a full turn starting from the front), for videos and evaluation."""
    yaw = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    return Cameras.orbit(yaw, math.radians(elevation_deg), radius, fov_deg=fov_deg)
