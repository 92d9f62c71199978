"""FID / KID arithmetic against closed forms, the FID Inception's weights file handling, multi-view consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tristudio.core.cameras import Cameras
from tristudio.core.metrics.consistency import geometry_error, lift_depth, reprojection_error
from tristudio.core.metrics.fid import fid_from_features, frechet_distance, sqrtm_psd, trace_sqrt_product
from tristudio.core.metrics.kid import kernel_inception_distance


def _rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_frechet_distance_closed_form_for_commuting_covariances():
    d = 6
    a = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.1, 4.0], dtype=torch.float64)
    b = torch.tensor([1.5, 0.2, 2.0, 1.0, 0.9, 0.3], dtype=torch.float64)
    mu1, mu2 = torch.arange(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    expect = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    assert math.isclose(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)), expect, rel_tol=1e-10)
    q = _rotation(d, 0)  # same eigenvectors, not diagonal: S1 S2 = Q diag(ab) Q^T
    s1, s2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T
    assert math.isclose(frechet_distance(mu1, s1, mu2, s2), expect, rel_tol=1e-9)
    assert math.isclose(trace_sqrt_product(s1, s2), float((a * b).sqrt().sum()), rel_tol=1e-9)
    r = sqrtm_psd(s1)
    torch.testing.assert_close(r @ r, s1)
    torch.testing.assert_close(r, q @ torch.diag(a.sqrt()) @ q.T)


def test_frechet_distance_non_commuting_against_the_definition():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 5, generator=g, dtype=torch.float64), torch.randn(5, 5, generator=g, dtype=torch.float64)
    s1, s2 = x @ x.T + 0.1 * torch.eye(5), y @ y.T + 0.1 * torch.eye(5)
    # tr sqrt(S1 S2) = sum sqrt(eigenvalues of S1 S2) (real, positive: similar to a PSD matrix)
    eig = torch.linalg.eigvals(s1 @ s2).real
    assert math.isclose(trace_sqrt_product(s1, s2), float(eig.clamp(min=0).sqrt().sum()), rel_tol=1e-8)
    # the Gaussian W2 is symmetric
    z = torch.zeros(5, dtype=torch.float64)
    assert math.isclose(frechet_distance(z, s1, z, s2), frechet_distance(z, s2, z, s1), rel_tol=1e-9)


def test_fid_and_kid_on_feature_sets():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(400, 16, generator=g)
    assert abs(fid_from_features(f, f)) < 1e-8
    shifted = f + 0.5
    assert math.isclose(fid_from_features(f, shifted), 16 * 0.25, rel_tol=1e-6)  # covariance unchanged
    same = kernel_inception_distance(f, f.clone(), num_subsets=10, max_subset_size=200)
    other = kernel_inception_distance(f[:200], torch.randn(200, 16, generator=g), num_subsets=10, max_subset_size=200)
    far = kernel_inception_distance(f, shifted, num_subsets=10, max_subset_size=200)
    assert abs(same[0]) < 0.1 and abs(other[0]) < 0.1  # unbiased: ~0 (+- sampling noise) for one distribution
    assert far[0] > 0.5 and far[0] > 10 * max(abs(same[0]), abs(other[0]))


def test_inception_missing_file_names_the_expected_path(tmp_path):
    from tristudio.core.metrics.inception import FID_WEIGHTS_NAME, InceptionWeightsError, load_inception

    with pytest.raises(InceptionWeightsError, match=FID_WEIGHTS_NAME):
        load_inception(tmp_path)
    with pytest.raises(InceptionWeightsError, match="--inception"):
        load_inception(None)


@pytest.mark.slow
def test_inception_loads_a_weights_file_and_gives_2048_features(tmp_path):
    from tristudio.core.metrics.inception import FID_WEIGHTS_NAME, FIDInceptionV3, InceptionWeightsError, load_inception

    torch.manual_seed(0)
    net = FIDInceptionV3()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}  # as the .pth
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and state["fc.weight"].shape == (1008, 2048)
    assert state["Mixed_6e.branch7x7dbl_2.conv.weight"].shape == (192, 192, 7, 1)
    torch.save(state, tmp_path / FID_WEIGHTS_NAME)
    loaded = load_inception(tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    feats = loaded(torch.rand(1, 3, 64, 64))
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all()
    del state["Mixed_5b.branch1x1.conv.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InceptionWeightsError, match="missing"):
        load_inception(tmp_path / "broken.pth")


def _sphere_depth(cams: Cameras, h: int, r: float = 0.5):
    rays = cams.rays(h)
    o, d = rays.origins, rays.directions
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - r * r)
    t = -b - disc.clamp(min=0).sqrt()
    n = len(cams)
    return t.reshape(n, 1, h, h), (disc > 0).reshape(n, 1, h, h)


def test_consistency_of_an_analytic_sphere_and_of_a_perturbed_depth():
    ca, cb = Cameras.orbit(0.0, 0.0), Cameras.orbit(0.3, 0.1)
    da, ma = _sphere_depth(ca, 64)
    db, mb = _sphere_depth(cb, 64)
    exact = reprojection_error(da, ca, ma, db, cb, mb)
    assert exact["depth_error"] < 1e-3 and exact["normal_error_deg"] < 0.5 and exact["valid_fraction"] > 0.5
    for delta in (0.01, 0.03):
        off = reprojection_error(da, ca, ma, db + delta, cb, mb)
        assert abs(off["depth_error"] - delta) < 1e-3
    # against known geometry: the sphere's normals are the normalised points
    ngt = torch.nn.functional.normalize(lift_depth(da, ca), dim=-1)
    gt = geometry_error(da, ca, ma, da, ngt, ma)
    assert gt["depth_error"] == 0 and gt["normal_error_deg"] < 0.5
    bumped = da + 0.02 * torch.sin(torch.linspace(0, 12, 64)).reshape(1, 1, 1, 64)
    worse = geometry_error(bumped, ca, ma, da, ngt, ma)
    assert worse["depth_error"] > 0.01 and worse["normal_error_deg"] > 2 * gt["normal_error_deg"]


def test_small_world_extractor_trains_and_reloads_the_trained_weights(tmp_path, monkeypatch):
    from tristudio.core.metrics import smallworld

    made = []

    class Recorded(smallworld.SmallWorldEncoder):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(smallworld, "SmallWorldEncoder", Recorded)
    imgs = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in smallworld.SmallWorldEncoder().state_dict().items()}  # = the run's init
    made.clear()
    smallworld.train_small_world_extractor(imgs, tmp_path / "sw", steps=3, batch=4, seed=0)
    trained = made[0]
    net = smallworld.load_small_world_extractor(tmp_path / "sw")
    assert net is not trained
    f = net(imgs)
    with torch.no_grad():
        f_trained = trained.eval()(imgs)
    loaded = net.state_dict()
    assert set(loaded) == set(trained.state_dict())
    moved = 0
    for k, v in trained.state_dict().items():
        assert torch.equal(loaded[k], v), k  # every tensor reloads bit for bit
        moved += int(not torch.equal(v, init[k]))
    assert moved > 5  # and training changed them (so the comparison is not with the initial weights)
    assert f.shape == (8, 256) and torch.equal(f, f_trained)


def test_shipped_small_world_extractor_tells_the_worlds_apart():
    """KID-sw between two disjoint samples of head renders is far below KID-sw between heads and objects, and a
    colour shift of the heads is seen: the shipped features measure what FID-sw claims to."""
    from tristudio.core.data.make import render_items
    from tristudio.core.metrics.features import extract
    from tristudio.core.metrics.smallworld import load_small_world_extractor

    net = load_small_world_extractor(None)  # the shipped one

    def feats(world, start, shift=0.0):
        imgs, _, _ = render_items(world, list(range(start, start + 32)), 32, supersample=1)
        x = torch.as_tensor(imgs).permute(0, 3, 1, 2).float() / 255
        return extract(net, (x + shift).clamp(0, 1))

    heads_a, heads_b = feats("heads", 0), feats("heads", 1000)
    same = kernel_inception_distance(heads_a, heads_b, num_subsets=20)[0]
    other = kernel_inception_distance(heads_a, feats("objects", 0), num_subsets=20)[0]
    shifted = kernel_inception_distance(heads_a, feats("heads", 1000, shift=0.15), num_subsets=20)[0]
    assert other > 10 * max(same, 1e-4)
    assert shifted > 3 * max(same, 1e-4)


# ----------------------------------------------------------------------------------------------- numpy references


def _np_fid(a, b):
    """FID by the textbook: np.cov (N - 1), tr sqrt(S1 S2) from the eigenvalues of S1 S2."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def _np_mmd2_unbiased(x, y):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, for sets of any sizes n, m."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def _two_gaussians(n1=40, n2=90, d=5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d)) + 0.3
    b = rng.normal(size=(n2, d)) @ (0.5 * rng.normal(size=(d, d)) / np.sqrt(d)) - 0.2
    return a, b


def test_fid_matches_numpy_with_unequal_covariances_and_sizes():
    a, b = _two_gaussians()
    ref = _np_fid(a, b)
    got = fid_from_features(torch.as_tensor(a), torch.as_tensor(b))
    assert math.isclose(got, ref, rel_tol=1e-9)
    # the same with ddof = 0 differs clearly at these sizes: the test can tell N from N - 1
    biased = frechet_distance(a.mean(0), np.cov(a, rowvar=False, ddof=0), b.mean(0), np.cov(b, rowvar=False, ddof=0))
    assert abs(biased - ref) > 1e-3 * abs(ref)


def test_kid_subset_estimate_is_the_unbiased_mmd_against_numpy():
    a, b = _two_gaussians(n1=30, n2=30, seed=1)
    # equal sizes, subset = the whole sets: every subset is a permutation, the estimate is exact
    mean, std = kernel_inception_distance(torch.as_tensor(a), torch.as_tensor(b), num_subsets=3, max_subset_size=30)
    assert math.isclose(mean, _np_mmd2_unbiased(a, b), rel_tol=1e-9) and std < 1e-9 * abs(mean)
    # unequal sizes (subsets of 40 out of 120): the subsets' mean estimates the full-set unbiased MMD^2
    a, b = _two_gaussians(n1=40, n2=120, seed=2)
    k = 200
    full = _np_mmd2_unbiased(a, b)
    mean, std = kernel_inception_distance(torch.as_tensor(a), torch.as_tensor(b), num_subsets=k, max_subset_size=40)
    tol = 4 * std / math.sqrt(k)
    assert abs(mean - full) < tol
    # a biased (diagonal-keeping) estimator would sit (mean k(x,x) - mean k(x,x')) / m higher per set: far outside
    d = a.shape[1]

    def excess(x):
        kxx = (x @ x.T / d + 1) ** 3
        off = (kxx.sum() - np.trace(kxx)) / (len(x) * (len(x) - 1))
        return (np.trace(kxx) / len(x) - off) / 40

    assert excess(a) + excess(b) > 3 * tol


def test_a_model_folder_of_another_kind_is_refused_naming_both_formats(tmp_path):
    """Loading, say, a render set as the FID-sw extractor fails on the folder's `format`, not later on shapes."""
    from tristudio.core.io.checkpoint import CheckpointError, save_checkpoint
    from tristudio.core.metrics.smallworld import load_small_world_extractor

    save_checkpoint(tmp_path / "other", {"w": torch.zeros(2)}, {"format": "tristudio-render-set"})
    with pytest.raises(CheckpointError, match="tristudio-sw-features.*'tristudio-render-set'"):
        load_small_world_extractor(tmp_path / "other")
