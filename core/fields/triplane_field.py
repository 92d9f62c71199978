"""Tri-planes as a directly optimised field (EG3D's hybrid explicit-implicit representation, fit to one scene).

Planes tensor: (1, 3, C, R, R) in EG3D's order (xy, xz, zx; see core/render/triplane.py), covering the box
[-box_warp/2, box_warp/2]^3. A point's features are the mean of its three bilinear plane samples
(`sample_from_planes`), decoded by EG3D's small OSG decoder (C -> 64 -> softplus -> 1 + 3). Colour is
view-independent, as in EG3D's decoder.

Memory is O(3 R^2 C): 3 x 128^2 x 32 floats = 6 MiB, a 1/R * 3 C'/C fraction of a dense grid's R^3 C'.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..render.triplane import OSGDecoder, sample_from_planes

__all__ = ["TriPlaneField"]


class TriPlaneField(nn.Module):
    def __init__(
        self, resolution: int = 128, channels: int = 32, hidden: int = 64, box_warp: float = 1.0, init_std: float = 0.1
    ):
        super().__init__()
        self.box_warp, self.resolution, self.channels = box_warp, resolution, channels
        self.planes = nn.Parameter(torch.randn(1, 3, channels, resolution, resolution) * init_std)  # (1, 3, C, R, R)
        self.decoder = OSGDecoder(n_features=channels, hidden_dim=hidden, out_features=3)

    def forward(self, coords: Float[Tensor, "n p 3"], dirs: Float[Tensor, "n p 3"]) -> dict[str, Tensor]:
        """World points (dirs unused) -> {"sigma": (n, p, 1) raw, "rgb": (n, p, 3)}."""
        if coords.shape[0] != 1:  # one scene, one plane set: fold ray batches into the point axis
            n, p, _ = coords.shape
            out = self.forward(coords.reshape(1, n * p, 3), dirs.reshape(1, n * p, 3))
            return {k: v.reshape(n, p, -1) for k, v in out.items()}
        return self.decoder(sample_from_planes(self.planes, coords, self.box_warp))  # (1, 3, p, C) -> decoded
