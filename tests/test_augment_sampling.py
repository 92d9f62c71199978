"""ADA augmentation (core/eg3d/augment.py) and stratified / disparity-space depth sampling (core/render/samplers.py):
properties that pin each transform (p = 0 identity, exact integer shifts, the statistic each colour transform keeps,
one transform for image and raw image, the rate p) and the sample spacing (uniform in depth or in 1 / depth)."""

from __future__ import annotations

import math

import pytest
import torch

from tristudio.core.eg3d.augment import AdaTuner, AugmentPipe, AugmentStrengths
from tristudio.core.render.samplers import sample_stratified


def _images(n=16, c=3, s=16, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed))


def _only(**kw) -> dict:
    """AugmentPipe kwargs with only the named transforms on."""
    return {
        "strengths": AugmentStrengths(**{**dict(translate=0.0, brightness=0.0, contrast=0.0, saturation=0.0), **kw})
    }


def test_p_zero_is_the_identity():
    x = _images()
    assert AugmentPipe(p=0.0)(x, torch.Generator().manual_seed(1)) is x


def _find_shift(out, x, max_shift):
    """The integer (tx, ty) with out[i, j] == x[i - ty, j - tx] on the overlap, or None."""
    h, w = x.shape[-2:]
    for ty in range(-max_shift, max_shift + 1):
        for tx in range(-max_shift, max_shift + 1):
            o = out[..., max(ty, 0) : h + min(ty, 0), max(tx, 0) : w + min(tx, 0)]
            r = x[..., max(-ty, 0) : h + min(-ty, 0), max(-tx, 0) : w + min(-tx, 0)]
            if torch.equal(o, r):
                return tx, ty
    return None


def test_translation_is_an_exact_integer_shift_that_inverts():
    x = _images(n=24, c=6, s=16)
    out = AugmentPipe(p=1.0, **_only(translate=0.125))(x, torch.Generator().manual_seed(2))
    shifts = []
    for i in range(len(x)):
        t = _find_shift(out[i], x[i], 2)  # 0.125 * 16 = 2 pixels at most
        assert t is not None, i
        tx, ty = t
        # shifting back by (-tx, -ty) recovers the input exactly where it is defined
        back = torch.roll(out[i], shifts=(-ty, -tx), dims=(-2, -1))
        h, w = 16, 16
        rows = slice(max(-ty, 0), h + min(-ty, 0))
        cols = slice(max(-tx, 0), w + min(-tx, 0))
        assert torch.equal(back[..., rows, cols], x[i][..., rows, cols])
        shifts.append(t)
    assert len({s for s in shifts if s != (0, 0)}) >= 5  # many different shifts, not a constant one
    # reflect padding: the values are all from the input (no zeros brought in)
    assert set(out.flatten().tolist()) <= set(x.flatten().tolist())


def test_brightness_adds_one_offset_per_sample_to_every_channel():
    x = _images(n=32, c=6)
    out = AugmentPipe(p=1.0, **_only(brightness=0.2))(x, torch.Generator().manual_seed(3))
    d = out - x
    per_sample = d.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6, rtol=0)
    assert (per_sample[:, 0].abs() > 0).all()
    assert 0.1 < float(per_sample[:, 0].std()) < 0.35  # N(0, 0.2)


def _one_factor(a, b):
    """The per-sample least-squares factor f with a = f b, after checking that it explains a exactly."""
    a, b = a.flatten(1), b.flatten(1)
    f = (a * b).sum(1) / (b * b).sum(1)
    torch.testing.assert_close(a, f[:, None] * b, atol=1e-5, rtol=0)
    return f


def test_contrast_scales_about_each_images_mean_and_keeps_it():
    """Each RGB triple (image, raw image) is scaled about its own mean, by the sample's one factor."""
    x = _images(n=32, c=6)
    out = AugmentPipe(p=1.0, **_only(contrast=0.5))(x, torch.Generator().manual_seed(4))
    xs, os_ = x.reshape(32, 2, 3, 16, 16), out.reshape(32, 2, 3, 16, 16)
    m = xs.mean((2, 3, 4), keepdim=True)
    torch.testing.assert_close(os_.mean((2, 3, 4), keepdim=True), m, atol=1e-6, rtol=0)
    f = _one_factor(os_ - m, xs - m)
    assert (f > 0).all() and (f - 1).abs().max() > 0.1


def test_saturation_keeps_each_pixels_luminance_and_scales_chroma():
    x = _images(n=32, c=6)
    out = AugmentPipe(p=1.0, **_only(saturation=1.0))(x, torch.Generator().manual_seed(5))
    xs, os_ = x.reshape(32, 2, 3, 16, 16), out.reshape(32, 2, 3, 16, 16)
    lum = xs.mean(2, keepdim=True)
    torch.testing.assert_close(os_.mean(2, keepdim=True), lum, atol=1e-6, rtol=0)
    f = _one_factor(os_ - lum, xs - lum)
    assert (f > 0).all() and (f - 1).abs().max() > 0.1


def test_image_and_raw_image_get_the_same_transform():
    a = _images(n=20, c=3)
    out = AugmentPipe(p=1.0)(torch.cat([a, a], 1), torch.Generator().manual_seed(6))
    assert torch.equal(out[:, :3], out[:, 3:])
    assert not torch.allclose(out[:, :3], a)


def test_each_transform_fires_with_probability_p():
    x = _images(n=800, c=3, s=4)
    out = AugmentPipe(p=0.3, **_only(brightness=0.2))(x, torch.Generator().manual_seed(7))
    changed = ((out - x).flatten(1).abs().max(1).values > 0).float().mean()
    assert abs(float(changed) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 800)


def test_ada_tuner_moves_p_by_its_step_towards_the_target():
    pipe = AugmentPipe(p=0.5)
    tuner = AdaTuner(target=0.6, ada_kimg=2.0, interval=4)
    step = 8 * 4 / 2000  # batch * interval / (ada_kimg * 1000)
    for s in range(4):
        tuner.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5 < 0.6: D not overfitting
        tuner.update(pipe, 8, s)
    assert pipe.p == pytest.approx(0.5 - step)
    for s in range(4, 8):
        tuner.accumulate(torch.ones(4))  # r_t = 1 > 0.6
        tuner.update(pipe, 8, s)
    assert pipe.p == pytest.approx(0.5)


def _rays(n=2, m=3):
    """(start, end) depths, each (n, m, 1): per-ray near and far bounds of different lengths (0.1 to 4)."""
    start = torch.tensor([2.0, 2.25, 1.5, 0.5, 3.0, 2.0])[: n * m].reshape(n, m, 1)
    return start, start + torch.tensor([1.0, 1.05, 2.5, 4.0, 0.5, 0.1])[: n * m].reshape(n, m, 1)


@pytest.mark.parametrize("disparity", [False, True])
def test_deterministic_samples_are_bin_centres_uniform_in_depth_or_disparity(disparity):
    start, end = _rays()
    s = 7
    d = sample_stratified(start, end, s, deterministic=True, disparity=disparity)
    assert d.shape == (2, 3, s, 1)
    if disparity:
        u, lo, hi = 1 / d[..., 0], 1 / start, 1 / end  # uniform in 1 / depth
    else:
        u, lo, hi = d[..., 0], start, end
    step = (hi - lo) / (s - 1)
    expect = lo + step * (torch.arange(s) + 0.5)
    torch.testing.assert_close(u, expect, atol=1e-5, rtol=1e-5)
    gaps = u.diff(dim=-1)
    torch.testing.assert_close(gaps, step.expand_as(gaps), atol=1e-5, rtol=1e-4)
    # in disparity space the depth gaps grow with depth (closer samples near the camera)
    if disparity:
        assert (d[..., 0].diff(dim=-1).diff(dim=-1) > 0).all()


@pytest.mark.parametrize("disparity", [False, True])
def test_jittered_samples_stay_in_their_bins(disparity):
    torch.manual_seed(0)
    start, end = _rays()
    s = 5
    d = torch.stack([sample_stratified(start, end, s, False, disparity) for _ in range(200)])  # (200, n, m, s, 1)
    u, lo, hi = (1 / d[..., 0], 1 / start, 1 / end) if disparity else (d[..., 0], start, end)
    step = (hi - lo) / (s - 1)
    k = torch.arange(s)
    rel = (u - lo) / step - k  # position inside bin k, in [0, 1)
    assert rel.min() >= -1e-4 and rel.max() <= 1 + 1e-4
    assert rel.std() > 0.25  # spread over the bin (U[0, 1] has std 0.289)
