"""Alpha compositing: EG3D's midpoint ray marcher (MipRayMarcher2), the one quadrature every render uses.

For K sorted samples t_0 < ... < t_{K-1} with colours c_i and raw densities s_i on a ray:

    delta_i = t_{i+1} - t_i,   c_i' = (c_i + c_{i+1}) / 2,   t_i' = (t_i + t_{i+1}) / 2,
    sigma_i = act((s_i + s_{i+1}) / 2)              act = softplus(x - 1) (EG3D) | identity (density given)
    alpha_i = 1 - exp(-sigma_i delta_i),   T_i = prod_{j<i} (1 - alpha_j + 1e-10),   w_i = alpha_i T_i
    C = sum_i w_i c_i'  (+ (1 - sum w) if white_back),   depth = sum_i w_i t_i' / sum_i w_i,   opacity = sum_i w_i

and EG3D maps features to [-1, 1] by C * 2 - 1 (`signed_output`). Depth is the ray distance t, not camera z.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from .volume import RenderOptions

__all__ = ["finish", "marcher_weights", "sample_weights", "weighted_sum"]


def marcher_weights(
    densities: Float[Tensor, "n m s 1"], depths: Float[Tensor, "n m s 1"], activation: str = "softplus_shift"
) -> Float[Tensor, "n m s_1 1"]:
    """w_i = alpha_i T_i of the midpoint marcher (one weight per interval between consecutive samples)."""
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    if activation == "softplus_shift":
        densities_mid = F.softplus(densities_mid - 1)
    elif activation != "identity":
        raise ValueError(f"unknown density_activation {activation!r}")
    alpha = 1 - torch.exp(-densities_mid * deltas)
    shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], dim=-2)
    return alpha * torch.cumprod(shifted, dim=-2)[:, :, :-1]


def sample_weights(weights: Float[Tensor, "n m s_1 1"]) -> Float[Tensor, "n m s 1"]:
    """Per-*sample* weights v_j with sum_i w_i (c_i + c_{i+1}) / 2 = sum_j v_j c_j, i.e. v_j = (w_{j-1} + w_j) / 2."""
    return (F.pad(weights, (0, 0, 1, 0)) + F.pad(weights, (0, 0, 0, 1))) / 2


def weighted_sum(v: Float[Tensor, "n m s 1"], colors: Float[Tensor, "n m s c"]) -> Float[Tensor, "n m c"]:
    return torch.matmul(v.transpose(-1, -2), colors).squeeze(-2)


def finish(
    rgb: Float[Tensor, "n m c"],
    weights: Float[Tensor, "n m s_1 1"],
    depths: Float[Tensor, "n m s 1"],
    opts: RenderOptions,
) -> tuple[Float[Tensor, "n m c"], Float[Tensor, "n m 1"]]:
    """Background and sign of the composited colour; the weighted mid-interval depth (inf where no weight)."""
    total = weights.sum(dim=2)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    depth = torch.nan_to_num((weights * depths_mid).sum(dim=-2) / total, float("inf"))
    if opts.white_back:
        rgb = rgb + 1 - total
    if opts.signed_output:
        rgb = rgb * 2 - 1
    return rgb, depth
