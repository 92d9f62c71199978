"""The original NeRF MLP (Mildenhall et al. 2020, fig. 7): a purely implicit field.

    x (world, in the box) -> gamma_10(x / (box_warp / 2))                          63 features
    8 x [Linear(., 256) + ReLU], the input encoding concatenated again before layer 5 (the skip at layer 4)
    sigma   = Linear(256 -> 1)                                                     raw density (renderer activates)
    feature = Linear(256 -> 256);  h = ReLU(Linear(256 + 27 -> 128)([feature, gamma_4(d)]))
    rgb     = sigmoid(Linear(128 -> 3)(h))                                         view-dependent colour

Differences from the paper, on purpose: one network serves both the coarse and the importance pass (as EG3D and
mip-NeRF do; the paper trains a second "fine" copy), and the raw density goes through tristudio's shared renderer
activation (softplus(s - 1), `RenderOptions.density_activation`) instead of a ReLU, so all representations share the
renderer settings. Layers use PyTorch's default (Kaiming-uniform) initialisation.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from .encoding import PositionalEncoding

__all__ = ["NeRFMLP"]


class NeRFMLP(nn.Module):
    def __init__(
        self,
        width: int = 256,
        depth: int = 8,
        skip: int = 4,
        pos_frequencies: int = 10,
        dir_frequencies: int = 4,
        color_width: int = 128,
        box_warp: float = 1.0,
    ):
        super().__init__()
        if not 0 < skip < depth:
            raise ValueError(f"NeRFMLP: skip layer {skip} must lie inside 1..{depth - 1}")
        self.box_warp, self.skip = box_warp, skip
        self.pos_enc = PositionalEncoding(pos_frequencies)
        self.dir_enc = PositionalEncoding(dir_frequencies)
        e = self.pos_enc.out_features
        layers = []
        for i in range(depth):
            fan_in = e if i == 0 else width + (e if i == skip else 0)
            layers.append(nn.Linear(fan_in, width))
        self.layers = nn.ModuleList(layers)
        self.sigma = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.color_hidden = nn.Linear(width + self.dir_enc.out_features, color_width)
        self.color = nn.Linear(color_width, 3)

    def forward(self, coords: Float[Tensor, "n p 3"], dirs: Float[Tensor, "n p 3"]) -> dict[str, Tensor]:
        """World points and unit view directions -> {"sigma": (n, p, 1) raw, "rgb": (n, p, 3) in (0, 1)}."""
        x_enc = self.pos_enc(coords * (2.0 / self.box_warp))  # (n, p, 63), coords scaled to [-1, 1]
        h = x_enc
        for i, layer in enumerate(self.layers):
            if i == self.skip:
                h = torch.cat([h, x_enc], dim=-1)  # (n, p, 256 + 63)
            h = torch.relu(layer(h))  # (n, p, 256)
        sigma = self.sigma(h)  # (n, p, 1)
        c = torch.cat([self.feature(h), self.dir_enc(dirs)], dim=-1)  # (n, p, 256 + 27)
        rgb = torch.sigmoid(self.color(torch.relu(self.color_hidden(c))))  # (n, p, 3)
        return {"sigma": sigma, "rgb": rgb}
