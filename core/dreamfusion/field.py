"""The 3D model DreamFusion optimises: density + albedo on tri-planes, and a background of the ray direction.

World frame as everywhere in tristudio (+y up, the object's front towards +z). The scene lives in the box
[-bound, bound]^3. Density is initialised as DreamFusion's blob around the origin,

    sigma(x) = softplus(mlp_sigma(F(x)) + lambda_blob * (1 - |x| / r_blob)),      albedo(x) = sigmoid(mlp_rgb(F(x)))

with F(x) the mean of the three bilinear plane samples (core/render/triplane.py). Normals are the negative
normalised density gradient, by central finite differences (six density evaluations a point).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..render.triplane import sample_from_planes

__all__ = ["DensityAlbedoField", "DirectionBackground"]


class DensityAlbedoField(nn.Module):
    """Sizes and blob as DreamFusionConfig sets them (`from_config`; the defaults live there)."""

    def __init__(
        self,
        plane_resolution: int,
        plane_channels: int,
        hidden: int,
        bound: float,
        blob_density: float,
        blob_radius: float,
    ):
        super().__init__()
        self.bound, self.blob_density, self.blob_radius = bound, blob_density, blob_radius
        self.plane_resolution, self.plane_channels = plane_resolution, plane_channels
        # (1, 3, C, R, R) planes xy, xz, zx (EG3D order), small random init
        self.planes = nn.Parameter(torch.randn(1, 3, plane_channels, plane_resolution, plane_resolution) * 0.1)
        self.mlp = nn.Sequential(nn.Linear(plane_channels, hidden), nn.SiLU(), nn.Linear(hidden, 4))

    @classmethod
    def from_config(cls, cfg) -> DensityAlbedoField:
        """The field of a DreamFusionConfig (plane_resolution resolved)."""
        return cls(cfg.plane_resolution, cfg.plane_channels, cfg.hidden, cfg.bound, cfg.blob_density, cfg.blob_radius)

    def _raw(self, x: Float[Tensor, "n p 3"]) -> Float[Tensor, "n p 4"]:
        feats = sample_from_planes(self.planes.expand(x.shape[0], -1, -1, -1, -1), x, box_warp=2 * self.bound)
        return self.mlp(feats.mean(dim=1))

    def blob(self, x: Float[Tensor, "n p 3"]) -> Float[Tensor, "n p 1"]:
        return self.blob_density * (1 - x.norm(dim=-1, keepdim=True) / self.blob_radius)

    def forward(self, x: Float[Tensor, "n p 3"]) -> tuple[Float[Tensor, "n p 1"], Float[Tensor, "n p 3"]]:
        """(sigma >= 0, albedo in [0, 1]) at world points."""
        raw = self._raw(x)
        sigma = F.softplus(raw[..., :1] + self.blob(x))
        return sigma, torch.sigmoid(raw[..., 1:4])

    def density(self, x: Float[Tensor, "n p 3"]) -> Float[Tensor, "n p 1"]:
        return F.softplus(self._raw(x)[..., :1] + self.blob(x))

    def normals(self, x: Float[Tensor, "n p 3"], eps: float | None = None) -> Float[Tensor, "n p 3"]:
        """n = -grad sigma / |grad sigma| by central differences (step: one plane texel unless given)."""
        eps = eps if eps is not None else 2 * self.bound / self.plane_resolution
        offsets = torch.eye(3, device=x.device, dtype=x.dtype) * eps  # (3, 3)
        pts = torch.cat([x + o for o in offsets] + [x - o for o in offsets], dim=1)  # (n, 6p, 3)
        d = self.density(pts).reshape(x.shape[0], 6, x.shape[1])
        grad = torch.stack([d[:, i] - d[:, i + 3] for i in range(3)], dim=-1) / (2 * eps)  # (n, p, 3)
        return -F.normalize(grad, dim=-1, eps=1e-8)

    def field_fn(self):
        """The renderer's field interface: composites albedo (3 channels)."""

        def field(coords: Tensor, dirs: Tensor) -> dict[str, Tensor]:
            sigma, albedo = self(coords)
            return {"sigma": sigma, "rgb": albedo}

        return field


class DirectionBackground(nn.Module):
    """Background colour as a small MLP of the ray direction (DreamFusion), with a low-frequency encoding."""

    def __init__(self, hidden: int = 16, n_freqs: int = 2):
        super().__init__()
        self.n_freqs = n_freqs
        self.mlp = nn.Sequential(nn.Linear(3 + 6 * n_freqs, hidden), nn.SiLU(), nn.Linear(hidden, 3))

    def forward(self, dirs: Float[Tensor, "... 3"]) -> Float[Tensor, "... 3"]:
        enc = [dirs]
        for k in range(self.n_freqs):
            enc += [torch.sin((2**k) * math.pi * dirs), torch.cos((2**k) * math.pi * dirs)]
        return torch.sigmoid(self.mlp(torch.cat(enc, dim=-1)))
