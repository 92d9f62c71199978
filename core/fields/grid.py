"""A dense feature grid + a tiny decoder: the fully explicit end of the spectrum (cf. EG3D fig. 2, "voxels").

Grid tensor: (1, C, D, H, W) = (1, C, R, R, R), covering the box [-box_warp/2, box_warp/2]^3. A world point
p = (x, y, z) is scaled to q = p / (box_warp / 2) in [-1, 1]^3 and sampled trilinearly with
`torch.nn.functional.grid_sample` (align_corners=False, zeros outside): x indexes W, y indexes H, z indexes D, and
voxel centre k along an axis of size R sits at q = (2k + 1) / R - 1. The features go through the same small decoder
as the tri-planes (OSG: C -> 64 -> softplus -> 1 + 3), so the two hybrids differ only in how features are stored.

Memory is O(R^3 C): 128^3 x 8 floats = 64 MiB of parameters, and Adam keeps two more copies plus the gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..render.triplane import OSGDecoder

__all__ = ["sample_grid", "DenseGridField"]


def sample_grid(
    grid: Float[Tensor, "1 c d h w"], coords: Float[Tensor, "n p 3"], box_warp: float = 1.0
) -> Float[Tensor, "n p c"]:
    """Trilinear samples of a feature grid at world points (align_corners=False, zero padding outside the box)."""
    if grid.ndim != 5 or grid.shape[0] != 1:
        raise ValueError(f"sample_grid: expected a (1, C, D, H, W) grid, got {tuple(grid.shape)}")
    n, p, _ = coords.shape
    q = (coords * (2.0 / box_warp)).reshape(1, 1, 1, n * p, 3).to(grid.dtype)  # (1, 1, 1, n*p, 3) as (x, y, z)
    out = F.grid_sample(grid, q, mode="bilinear", padding_mode="zeros", align_corners=False)  # (1, c, 1, 1, n*p)
    return out.reshape(grid.shape[1], n * p).t().reshape(n, p, grid.shape[1])


class DenseGridField(nn.Module):
    def __init__(
        self, resolution: int = 128, channels: int = 8, hidden: int = 64, box_warp: float = 1.0, init_std: float = 0.1
    ):
        super().__init__()
        self.box_warp, self.resolution, self.channels = box_warp, resolution, channels
        # (1, C, R, R, R): axes (D, H, W) = (z, y, x) in world terms.
        self.grid = nn.Parameter(torch.randn(1, channels, resolution, resolution, resolution) * init_std)
        self.decoder = OSGDecoder(n_features=channels, hidden_dim=hidden, out_features=3)

    def forward(self, coords: Float[Tensor, "n p 3"], dirs: Float[Tensor, "n p 3"]) -> dict[str, Tensor]:
        """World points (dirs unused: colour is view-independent) -> {"sigma": (n, p, 1) raw, "rgb": (n, p, 3)}."""
        feats = sample_grid(self.grid, coords, self.box_warp)  # (n, p, C)
        # OSGDecoder averages three plane samples; hand it the same feature three times -> exactly MLP(feats).
        return self.decoder(feats[:, None].expand(-1, 3, -1, -1))
