"""The tri-plane field: three axis-aligned feature planes, a projection, bilinear sampling, mean aggregation, and
EG3D's small decoder MLP.

Planes tensor: (N, 3, C, H, W), in EG3D's order. A world point p = (x, y, z) inside the box [-box_warp/2, box_warp/2]^3
is scaled to [-1, 1]^3 and projected onto

    plane 0 at (x, y)     plane 1 at (x, z)     plane 2 at (z, x)

(EG3D's known quirk: the third plane is indexed (z, x), not (z, y); kept so official weights work.) The first
projected coordinate indexes the plane's width (W, columns), the second its height (H, rows), as in
`torch.nn.functional.grid_sample` with align_corners=False and zero padding outside the box.

    F(p) = mean_i  bilinear(plane_i, proj_i(p))          (C features)
    (sigma, features) = MLP(F(p))                         sigma raw; features = sigmoid(.) * 1.002 - 0.001
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..layers import FullyConnectedLayer

__all__ = ["PLANE_AXES", "project_onto_planes", "sample_from_planes", "OSGDecoder", "triplane_field"]

# EG3D's generate_planes(): plane i's axes as rows. coords @ inverse(PLANE_AXES[i]) keeps (x, y), (x, z), (z, x).
PLANE_AXES: Float[Tensor, "3 3 3"] = torch.tensor(
    [
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
    ],
    dtype=torch.float32,
)

# The same projection as index pairs: (first, second) coordinate of each plane.
_PLANE_INDEX = ((0, 1), (0, 2), (2, 0))


def project_onto_planes(coords: Float[Tensor, "n m 3"]) -> Float[Tensor, "n 3 m 2"]:
    """Project points onto the three planes: (x, y), (x, z), (z, x). Exactly EG3D's `coords @ inv(P_i)[:, :2]`."""
    return torch.stack([coords[..., list(ij)] for ij in _PLANE_INDEX], dim=1)


def sample_from_planes(
    planes: Float[Tensor, "n 3 c h w"], coords: Float[Tensor, "n m 3"], box_warp: float = 1.0
) -> Float[Tensor, "n 3 m c"]:
    """Bilinear samples (align_corners=False, zeros outside) of each plane at the projected world points."""
    n, n_planes, c, h, w = planes.shape
    if n_planes != 3:
        raise ValueError(f"sample_from_planes: expected 3 planes, got planes of shape {tuple(planes.shape)}")
    if coords.shape[0] != n:
        raise ValueError(f"sample_from_planes: {n} plane sets but coords for {coords.shape[0]}")
    return _sample_flat(_flat_planes(planes), n, coords, box_warp)


def _flat_planes(planes: Float[Tensor, "n 3 c h w"]) -> Float[Tensor, "n3 c h w"]:
    # Inference: channels-last planes make CPU grid_sample faster, and its output is then already (n*3, 1, m, c) in
    # memory. Training: grid_sample's CPU backward is ~1.8x faster on contiguous (NCHW) planes, so keep those.
    n, _, c, h, w = planes.shape
    flat = planes.reshape(n * 3, c, h, w)
    if planes.requires_grad and torch.is_grad_enabled():
        return flat.contiguous()
    return flat.contiguous(memory_format=torch.channels_last)


def _sample_flat(flat: Tensor, n: int, coords: Float[Tensor, "n m 3"], box_warp: float) -> Float[Tensor, "n 3 m c"]:
    m, c = coords.shape[1], flat.shape[1]
    grid = project_onto_planes(coords * (2.0 / box_warp)).reshape(n * 3, 1, m, 2).to(flat.dtype)
    out = torch.nn.functional.grid_sample(
        flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (n*3, c, 1, m)
    return out.permute(0, 3, 2, 1).reshape(n, 3, m, c)


class OSGDecoder(nn.Module):
    """EG3D's decoder: mean of the three plane features -> FC(C -> 64) -> softplus -> FC(64 -> 1 + out_features).

    Returns sigma (raw density, before the renderer's activation) and features whose first 3 channels are RGB,
    mapped by sigmoid(.) * (1 + 2 * 0.001) - 0.001 to (-0.001, 1.001). State-dict keys: net.0.*, net.2.*.
    """

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, out_features: int = 32, lr_multiplier: float = 1.0):
        super().__init__()
        self.n_features, self.hidden_dim, self.out_features = n_features, hidden_dim, out_features
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + out_features, lr_multiplier=lr_multiplier),
        )

    def forward(self, sampled: Float[Tensor, "n 3 m c"]) -> dict[str, Tensor]:
        x = sampled.mean(dim=1)  # (n, m, c): tri-plane aggregation by averaging (a cheap backward: an expand)
        x = self.net(x)  # (n, m, 1 + out)
        sigma = x[..., 0:1]  # (n, m, 1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001  # (n, m, out)
        return {"sigma": sigma, "rgb": rgb}


def triplane_field(planes: Float[Tensor, "n 3 c h w"], decoder: nn.Module, box_warp: float = 1.0, density_noise=0.0):
    """A field function for `render_rays`: coords (n, p, 3), dirs (n, p, 3) -> {sigma (n, p, 1), rgb (n, p, C')}."""

    n = planes.shape[0]
    flat = _flat_planes(planes)  # converted once, not per chunk

    def field(coords: Tensor, dirs: Tensor) -> dict[str, Tensor]:
        out = decoder(_sample_flat(flat, n, coords, box_warp))
        if density_noise > 0:
            out["sigma"] = out["sigma"] + torch.randn_like(out["sigma"]) * density_noise
        return out

    return field
