"""Camera distributions for the procedural worlds, one generator per item seed (so item i is reproducible alone).

- heads: EG3D's FFHQ distribution: `eg3d_lookat_sampler` around the frontal pose (h, v ~ N(pi/2, 0.3), N(pi/2,
  0.155)), h clamped to [0, pi] (|yaw| <= 90 deg), radius 2.7 around the world origin, looking at the pivot
  (0, 0, 0.2), diagonal fov 18.837 deg.
- heads, "rebalanced" (EG3D's FFHQ-rebalanced idea: more side views): the same draw, then with probability
  REBALANCED_SIDE_PROB the yaw is replaced by one uniform in [-REBALANCED_MAX_YAW_DEG, +REBALANCED_MAX_YAW_DEG]
  (EG3D duplicates FFHQ's rare steep-yaw images; a procedural world can simply draw more of them).
- objects: uniform orbits around the origin: yaw uniform in [-180, 180) deg, pitch uniform on the sphere's band
  [-15, 75] deg (uniform in sin(pitch)), radius 2.5, fov 30 deg, looking at the origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..cameras import FFHQ_FOV_DEG, FFHQ_PIVOT, FFHQ_RADIUS, Cameras, eg3d_lookat_sampler, intrinsics_from_fov

__all__ = [
    "HEAD_H_STD",
    "HEAD_V_STD",
    "OBJECT_RADIUS",
    "OBJECT_FOV_DEG",
    "OBJECT_PITCH_RANGE_DEG",
    "HEAD_CAMERAS",
    "REBALANCED_SIDE_PROB",
    "REBALANCED_MAX_YAW_DEG",
    "head_cameras",
    "object_cameras",
    "camera_yaw_pitch",
]

HEAD_H_STD = 0.3
HEAD_V_STD = 0.155
HEAD_CAMERAS = ("ffhq", "rebalanced")
REBALANCED_SIDE_PROB = 0.5
REBALANCED_MAX_YAW_DEG = 80.0
OBJECT_RADIUS = 2.5
OBJECT_FOV_DEG = 30.0
OBJECT_PITCH_RANGE_DEG = (-15.0, 75.0)

_CAMERA_STREAM = 0x5EED_CA3E  # camera generators are seeded apart from the worlds' own generators


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) ^ _CAMERA_STREAM) % (2**63))


def head_cameras(seeds: Sequence[int], distribution: str = "ffhq") -> Cameras:
    """One FFHQ-like camera per seed; `distribution` "ffhq" or "rebalanced" (see the module docstring)."""
    if distribution not in HEAD_CAMERAS:
        raise ValueError(f"unknown head camera distribution {distribution!r}; expected one of {HEAD_CAMERAS}")
    hv = []
    for s in seeds:
        g = _generator(s)
        h = math.pi / 2 + HEAD_H_STD * torch.randn((), generator=g).item()
        v = math.pi / 2 + HEAD_V_STD * torch.randn((), generator=g).item()
        if distribution == "rebalanced":
            side, u = torch.rand(2, generator=g).tolist()
            if side < REBALANCED_SIDE_PROB:
                h = math.pi / 2 + math.radians(REBALANCED_MAX_YAW_DEG) * (2 * u - 1)
        hv.append((min(max(h, 0.0), math.pi), v))
    h = torch.tensor([a for a, _ in hv])
    v = torch.tensor([b for _, b in hv])
    c2w = eg3d_lookat_sampler(h, v, pivot=FFHQ_PIVOT, radius=FFHQ_RADIUS, n=len(hv))
    return Cameras(c2w, intrinsics_from_fov(FFHQ_FOV_DEG, n=len(hv)))


def object_cameras(seeds: Sequence[int]) -> Cameras:
    """One uniform-orbit camera per seed (see the module docstring)."""
    lo, hi = (math.sin(math.radians(a)) for a in OBJECT_PITCH_RANGE_DEG)
    yaw, pitch = [], []
    for s in seeds:
        g = _generator(s)
        u = torch.rand(2, generator=g).tolist()
        yaw.append((2 * u[0] - 1) * math.pi)
        pitch.append(math.asin(lo + (hi - lo) * u[1]))
    return Cameras.orbit(torch.tensor(yaw), torch.tensor(pitch), radius=OBJECT_RADIUS, fov_deg=OBJECT_FOV_DEG)


def camera_yaw_pitch(
    cam2world: Float[Tensor, "n 4 4"], center=(0.0, 0.0, 0.0)
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"], Float[Tensor, " n"]]:
    """(yaw, pitch, radius) of camera centres seen from `center` (radians; the conventions of core/cameras.py)."""
    offset = cam2world[:, :3, 3] - torch.as_tensor(center, dtype=cam2world.dtype)
    radius = offset.norm(dim=-1)
    yaw = torch.atan2(offset[:, 0], offset[:, 2])
    pitch = torch.asin((offset[:, 1] / radius.clamp(min=1e-12)).clamp(-1, 1))
    return yaw, pitch, radius
