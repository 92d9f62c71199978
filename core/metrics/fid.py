"""Frechet distance between Gaussians fitted to features (FID, Heusel et al. 2017), computed exactly.

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )

tr((S1 S2)^(1/2)) is evaluated through the symmetric form: with R = S1^(1/2) (eigendecomposition of the symmetric
PSD S1), S1 S2 = R^-1 (R S2 R) R is similar to the symmetric PSD matrix R S2 R, so its square root has the same trace
as (R S2 R)^(1/2) = sum_i sqrt(lambda_i(R S2 R)). Everything in float64; tiny negative eigenvalues from round-off are
clipped to 0. No scipy, no complex sqrtm.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["feature_stats", "sqrtm_psd", "trace_sqrt_product", "frechet_distance", "fid_from_features"]


def feature_stats(features: Float[Tensor, "n d"]) -> tuple[Float[Tensor, " d"], Float[Tensor, "d d"]]:
    """Mean and unbiased covariance (ddof = 1, as np.cov) in float64."""
    f = torch.as_tensor(features, dtype=torch.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature_stats: need (N >= 2, D) features, got {tuple(f.shape)}")
    mu = f.mean(dim=0)
    x = f - mu
    return mu, x.T @ x / (f.shape[0] - 1)


def sqrtm_psd(a: Float[Tensor, "d d"]) -> Float[Tensor, "d d"]:
    """Principal square root of a symmetric positive semi-definite matrix via eigh."""
    a = torch.as_tensor(a, dtype=torch.float64)
    a = (a + a.T) / 2
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def trace_sqrt_product(s1: Float[Tensor, "d d"], s2: Float[Tensor, "d d"]) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 (see the module docstring)."""
    r = sqrtm_psd(s1)
    m = r @ torch.as_tensor(s2, dtype=torch.float64) @ r
    m = (m + m.T) / 2
    return float(torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    mu1, mu2 = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(np.asarray(s), dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(
            f"frechet_distance: shapes mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
            f"sigma {tuple(s1.shape)}/{tuple(s2.shape)} do not match"
        )
    diff = float((mu1 - mu2).square().sum())
    return diff + float(torch.trace(s1) + torch.trace(s2)) - 2 * trace_sqrt_product(s1, s2)


def fid_from_features(f1: Float[Tensor, "n d"], f2: Float[Tensor, "m d"]) -> float:
    mu1, s1 = feature_stats(f1)
    mu2, s2 = feature_stats(f2)
    return frechet_distance(mu1, s1, mu2, s2)
