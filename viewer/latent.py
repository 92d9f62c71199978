"""Latent codes for the viewer: z from a seed (EG3D's gen_samples convention), slerp / lerp, conditioning labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LatentSpec", "z_from_seed", "slerp", "frontal_label", "INTERP_MODES", "COND_MODES"]

INTERP_MODES = ("slerp_z", "lerp_w")
COND_MODES = ("frontal", "view")


@dataclass(frozen=True)
class LatentSpec:
    """Everything that decides the tri-planes. Hashable: the planes cache key."""

    seed_a: int = 0
    seed_b: int = 1
    t: float = 0.0  # 0 = seed A, 1 = seed B
    mode: str = "slerp_z"  # slerp in z, or lerp in w
    psi: float = 0.7  # truncation psi (0: every seed gives w_avg)
    cutoff: int | None = None  # truncation cutoff (number of ws truncated; None = all)
    cond: str = "frontal"  # conditioning camera: frontal, or the view camera
    cond_label: tuple[float, ...] | None = None  # 25 floats when cond == "view"


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """(1, z_dim) float32 z, as EG3D's gen_samples.py: np.random.RandomState(seed).randn(1, z_dim)."""
    return torch.from_numpy(np.random.RandomState(int(seed) % (2**32)).randn(1, z_dim)).float()


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of (1, D) vectors (their norms interpolated linearly); t = 0 -> a, t = 1 -> b."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return torch.lerp(a, b, t)
    u = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return u * ((1 - t) * na + t * nb)


def frontal_label(rendering_kwargs: dict, fov_deg: float = 18.837) -> torch.Tensor:
    """EG3D's conditioning camera in gen_samples: LookAtPoseSampler(pi/2, pi/2, pivot, radius), FFHQ intrinsics."""
    from tristudio.core.cameras import Cameras, eg3d_lookat_sampler, intrinsics_from_fov

    pivot = tuple(rendering_kwargs.get("avg_camera_pivot", (0.0, 0.0, 0.2)))
    radius = float(rendering_kwargs.get("avg_camera_radius", 2.7))
    c2w = eg3d_lookat_sampler(math.pi / 2, math.pi / 2, pivot=pivot, radius=radius)
    return Cameras(c2w, intrinsics_from_fov(fov_deg)).label()
