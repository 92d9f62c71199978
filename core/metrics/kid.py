"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD between two feature
sets with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3, averaged over random subsets.

For subsets X, Y of size m:
    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j)
Unbiased: for two samples of one distribution its expectation is 0 (single estimates can be slightly negative).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["polynomial_kernel", "mmd2_unbiased", "kernel_inception_distance"]


def polynomial_kernel(x: Float[Tensor, "n d"], y: Float[Tensor, "m d"], degree: int = 3, coef: float = 1.0):
    d = x.shape[1]
    return (x @ y.T / d + coef) ** degree


def mmd2_unbiased(x: Float[Tensor, "m d"], y: Float[Tensor, "m d"]) -> float:
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError(f"mmd2_unbiased: need two subsets of the same size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(same - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(
    f1: Float[Tensor, "n d"],
    f2: Float[Tensor, "k d"],
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of MMD^2_u over `num_subsets` random subsets of size min(n, k, max_subset_size)."""
    f1 = torch.as_tensor(f1, dtype=torch.float64)
    f2 = torch.as_tensor(f2, dtype=torch.float64)
    m = min(f1.shape[0], f2.shape[0], max_subset_size)
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(num_subsets):
        x = f1[torch.randperm(f1.shape[0], generator=g)[:m]]
        y = f2[torch.randperm(f2.shape[0], generator=g)[:m]]
        vals.append(mmd2_unbiased(x, y))
    t = torch.tensor(vals, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(vals) > 1 else 0.0
