"""The EG3D acceptance pieces: the no-3D PCA-Gaussian baseline reproduces the statistics it claims, and the yaw grid
is laid out as documented."""

from __future__ import annotations

import numpy as np
import torch

from tristudio.core.eg3d.acceptance import PCAGaussian, yaw_grid


def test_pca_gaussian_matches_mean_and_leading_variances():
    g = torch.Generator().manual_seed(0)
    # images on a 3-dimensional affine subspace with known standard deviations 0.2, 0.1, 0.05
    basis = torch.linalg.qr(torch.randn(3 * 8 * 8, 3, generator=g, dtype=torch.float64))[0].T  # (3, D) orthonormal
    stds = torch.tensor([0.2, 0.1, 0.05], dtype=torch.float64)
    mean = torch.full((3 * 8 * 8,), 0.5, dtype=torch.float64)
    u = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    images = (mean + (u * stds) @ basis).reshape(4000, 3, 8, 8).float()
    pca = PCAGaussian(images, k=3)
    assert torch.allclose(pca.std, stds, rtol=0.05)
    samples = pca.sample(4000, torch.Generator().manual_seed(1)).reshape(4000, -1).double()
    assert (samples.mean(0) - mean).abs().max() < 0.02
    coords = (samples - mean) @ basis.T  # (n, 3): the samples' coordinates in the true subspace
    assert torch.allclose(coords.std(0), stds, rtol=0.08)
    residual = (samples - mean) - coords @ basis  # nothing outside the subspace
    assert residual.abs().max() < 1e-4


def test_pca_gaussian_with_fewer_components_keeps_only_the_leading_modes():
    g = torch.Generator().manual_seed(2)
    basis = torch.linalg.qr(torch.randn(48, 2, generator=g, dtype=torch.float64))[0].T
    u = torch.randn(500, 2, generator=g, dtype=torch.float64) * torch.tensor([0.3, 0.01], dtype=torch.float64)
    images = (0.5 + u @ basis).reshape(500, 3, 4, 4).float()
    pca = PCAGaussian(images, k=1)
    direction = pca.components[0]
    assert abs(float(direction @ basis[0])) > 0.99  # the large mode, not the small one


def test_yaw_grid_has_seed_rows_and_yaw_columns():
    from tristudio.core.eg3d.generator import TriPlaneGenerator
    from tristudio.core.eg3d.presets import preset

    torch.manual_seed(0)
    G = TriPlaneGenerator(**preset("tiny")).eval()
    grid = yaw_grid(G, [0, 1], [-30.0, 0.0, 30.0])
    s = G.img_resolution
    assert grid.shape == (2 * s, 3 * s, 3) and grid.dtype.name == "uint8"
    # different seeds give different rows; one seed's columns are different views
    assert (grid[:s].astype(int) - grid[s:].astype(int)).any()
    assert (grid[:s, :s].astype(int) - grid[:s, s : 2 * s].astype(int)).any()
    # tile (row r, column c) is seed r at yaw c, the same pixels as that seed and yaw rendered alone
    assert np.array_equal(yaw_grid(G, [1], [30.0]), grid[s:, 2 * s :])
    assert np.array_equal(yaw_grid(G, [0], [-30.0]), grid[:s, :s])
    assert np.array_equal(yaw_grid(G, [1, 0], [-30.0, 0.0, 30.0])[:s], grid[s:])
