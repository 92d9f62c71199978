"""NeRF's positional encoding (Mildenhall et al. 2020, eq. 4), the frequency map that lets an MLP fit fine detail.

    gamma(p) = (p, sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(L-1) pi p), cos(2^(L-1) pi p))      per coordinate

Input p is expected in [-1, 1] (positions: world / (box_warp / 2); directions: unit vectors). The identity term is
kept (the original code's `include_input`), so a 3-vector encodes to 3 + 3 * 2 * L features: 63 for L = 10 (xyz),
27 for L = 4 (view directions). Feature order: [p, sin(f_0 p), cos(f_0 p), sin(f_1 p), ...], each block 3 wide.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["PositionalEncoding"]


class PositionalEncoding(nn.Module):
    def __init__(self, n_frequencies: int, in_features: int = 3, include_input: bool = True):
        super().__init__()
        if n_frequencies < 0:
            raise ValueError(f"PositionalEncoding: n_frequencies must be >= 0, got {n_frequencies}")
        self.n_frequencies, self.in_features, self.include_input = n_frequencies, in_features, include_input
        # (L,) angular frequencies 2^k pi; a buffer so it follows .to(device) but is not a parameter.
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32), False)

    @property
    def out_features(self) -> int:
        return self.in_features * (2 * self.n_frequencies + int(self.include_input))

    def forward(self, p: Float[Tensor, "... d"]) -> Float[Tensor, "... e"]:
        if p.shape[-1] != self.in_features:
            raise ValueError(f"PositionalEncoding: expected {self.in_features} input features, got {p.shape[-1]}")
        angles = p[..., None, :] * self.freqs[:, None]  # (..., L, d)
        sincos = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-2)  # (..., L, 2, d)
        enc = sincos.flatten(-3)  # (..., L * 2 * d), blocks [sin f0 p, cos f0 p, sin f1 p, ...]
        return torch.cat([p, enc], dim=-1) if self.include_input else enc
