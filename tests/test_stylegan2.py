"""StyleGAN2 building blocks against direct (slow, obvious) computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tristudio.core.eg3d.stylegan2 import (
    MappingNetwork,
    SynthesisBlock,
    SynthesisNetwork,
    conv2d_resample,
    modulated_conv2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)


def direct_upfirdn2d(x: np.ndarray, f: np.ndarray, up: int, down: int, pad, gain: float) -> np.ndarray:
    """Textbook definition with loops: zero-insert, pad (negative = crop), true 2-D convolution, decimate."""
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    big = np.zeros((n, c, h * up + max(y0, 0) + max(y1, 0), w * up + max(x0, 0) + max(x1, 0)))
    big[:, :, max(y0, 0) : max(y0, 0) + h * up, max(x0, 0) : max(x0, 0) + w * up] = u
    big = big[:, :, max(-y0, 0) : big.shape[2] - max(-y1, 0), max(-x0, 0) : big.shape[3] - max(-x1, 0)]
    kh, kw = f.shape
    fg = f * gain
    oh, ow = big.shape[2] - kh + 1, big.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):  # convolution: filter index reversed
                    out[:, :, i, j] += big[:, :, i + a, j + b] * fg[kh - 1 - a, kw - 1 - b]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad", [(1, 1, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)), (2, 1, (3, 2, 0, -1)), (1, 2, (1, 1, 2, 2))]
)
def test_upfirdn2d_matches_direct_definition(up, down, pad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    f = torch.rand(4, 4, generator=g, dtype=torch.float64)  # asymmetric: catches a missing flip
    ours = upfirdn2d(x, f, up=up, down=down, padding=pad, gain=3.0).numpy()
    ref = direct_upfirdn2d(x.numpy(), f.numpy(), up, down, pad, 3.0)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_setup_filter_and_upsample2d():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and abs(f.sum().item() - 1) < 1e-7
    assert torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    y = upsample2d(x, f.double())
    assert y.shape == (2, 5, 14, 18)
    ref = direct_upfirdn2d(x.numpy(), f.double().numpy(), 2, 1, (2, 1, 2, 1), 4.0)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-10)
    # a constant image stays constant in the interior (gain 4 compensates the inserted zeros)
    c = upsample2d(torch.ones(1, 1, 8, 8), f)
    assert torch.allclose(c[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12), atol=1e-6)


def test_conv2d_resample_up_equals_upsample_then_conv():
    """The transposed-conv path equals 'zero-insert + FIR (gain 4) with padding on the upsampled image, then conv'."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    f = setup_filter().double()
    for flip_weight in (False, True):
        ours = conv2d_resample(x, w, f, up=2, padding=1, flip_weight=flip_weight)
        # padding 1 on the upsampled image + the filter's own (fw + up - 1) // 2, (fw - up) // 2
        up = torch.from_numpy(direct_upfirdn2d(x.numpy(), f.numpy(), 2, 1, (3, 2, 3, 2), 4.0))
        ref = F.conv2d(up, w if flip_weight else w.flip([2, 3]))
        assert ours.shape == (2, 5, 12, 12)
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)


def _dense_modconv(x, weight, styles, demodulate, up=0, f=None, flip_weight=True):
    """Explicit per-sample weights and one F.conv2d (or upsample + conv) per sample."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]  # modulation
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # demodulation
        xn = x[n : n + 1]
        if up:
            xn = torch.from_numpy(direct_upfirdn2d(xn.numpy(), f.numpy(), 2, 1, (3, 2, 3, 2), 4.0))
            outs.append(F.conv2d(xn, w if flip_weight else w.flip([2, 3])))
        else:
            outs.append(F.conv2d(xn, w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_dense_per_sample(fused, demodulate):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, 8, 8, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 6, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 6, generator=g, dtype=torch.float64) + 1
    ours = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate, fused_modconv=fused)
    ref = _dense_modconv(x, weight, styles, demodulate)
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_upsampling_equals_dense_per_sample(fused):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(2, 4, generator=g, dtype=torch.float64)
    f = setup_filter().double()
    ours = modulated_conv2d(
        x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=fused
    )
    ref = _dense_modconv(x, weight, styles, True, up=2, f=f, flip_weight=False)
    assert ours.shape == (2, 3, 10, 10)
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)


def test_demodulation_makes_output_independent_of_style_scale():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 6, 6, generator=g)
    weight = torch.randn(5, 8, 3, 3, generator=g)
    styles = torch.randn(2, 8, generator=g)
    a = modulated_conv2d(x, weight, styles, padding=1)
    b = modulated_conv2d(x, weight, styles * torch.tensor([[7.0], [0.1]]), padding=1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # without demodulation the output scales with the style
    c = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    d = modulated_conv2d(x, weight, styles * 7, padding=1, demodulate=False)
    torch.testing.assert_close(d, 7 * c, atol=1e-4, rtol=1e-4)
    # the effective per-sample weights, read back by probing the layer with unit impulses, are the modulated
    # weights scaled to unit L2 norm per output channel, whatever the style scale
    for fused in (True, False):
        for scale in (0.01, 1.0, 100.0):
            w_eff = _probe_weights(x.shape[1], weight, styles[0] * scale, fused)  # (O, I, 3, 3)
            norms = w_eff.square().sum(dim=(1, 2, 3))
            modulated = weight.double() * (styles[0] * scale).double()[None, :, None, None]
            m2 = modulated.square().sum(dim=(1, 2, 3))
            torch.testing.assert_close(norms, m2 / (m2 + 1e-8), atol=1e-7, rtol=0)  # 1 but for StyleGAN2's eps
            assert (norms - 1).abs().max() < 1e-5
            ratio = w_eff / modulated  # one positive factor per output channel
            torch.testing.assert_close(ratio, ratio[:, :1, :1, :1].expand_as(ratio), atol=1e-6, rtol=1e-6)
            assert (ratio > 0).all()


def _probe_weights(in_channels, weight, style, fused):
    """The weights one sample's modulated conv applies: the response to a unit impulse in each input channel at the
    centre of a 5 x 5 image (padding 1: output (2 - dy, 2 - dx) sees weight tap (1 + dy, 1 + dx))."""
    x = torch.zeros(in_channels, in_channels, 5, 5, dtype=torch.float64)
    x[torch.arange(in_channels), torch.arange(in_channels), 2, 2] = 1.0
    styles = style.double()[None].expand(in_channels, -1)
    y = modulated_conv2d(x, weight.double(), styles, padding=1, fused_modconv=fused)  # (I, O, 5, 5)
    return y[:, :, 1:4, 1:4].flip([2, 3]).permute(1, 0, 2, 3)  # (O, I, 3, 3)


def test_mapping_truncation_and_w_avg():
    torch.manual_seed(0)
    m = MappingNetwork(z_dim=16, c_dim=4, w_dim=8, num_ws=5, num_layers=2)
    with torch.no_grad():
        m.w_avg.copy_(torch.randn(8))
    z, c = torch.randn(3, 16), torch.randn(3, 4)
    ws = m(z, c)
    assert ws.shape == (3, 5, 8)
    assert torch.equal(ws[:, 0], ws[:, 4])  # broadcast
    w0 = m(z, c, truncation_psi=0)
    assert torch.allclose(w0, m.w_avg.expand(3, 5, 8))
    wc = m(z, c, truncation_psi=0, truncation_cutoff=2)
    assert torch.allclose(wc[:, :2], m.w_avg.expand(3, 2, 8)) and torch.equal(wc[:, 2:], ws[:, 2:])
    wh = m(z, c, truncation_psi=0.5)
    assert torch.allclose(wh, m.w_avg + 0.5 * (ws - m.w_avg), atol=1e-6)
    # tracked average: w_avg <- 0.998 w_avg + 0.002 mean(w)
    before = m.w_avg.clone()
    ws = m(z, c, update_emas=True)
    assert torch.allclose(m.w_avg, 0.998 * before + 0.002 * ws[:, 0].mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="z must be"):
        m(torch.randn(3, 15), c)


def test_mapping_normalises_inputs():
    m = MappingNetwork(z_dim=16, c_dim=0, w_dim=8, num_ws=None, num_layers=1)
    z = torch.randn(2, 16)
    torch.testing.assert_close(m(z, None), m(z * 10, None), atol=1e-5, rtol=1e-5)  # 2nd-moment normalisation


def test_synthesis_num_ws_and_shapes():
    s = SynthesisNetwork(w_dim=16, img_resolution=32, img_channels=6, channel_base=256, channel_max=16)
    assert s.num_ws == 1 + 3 * 2 + 1  # b4: conv1; b8..b32: conv0+conv1; last torgb
    out = s(torch.randn(2, s.num_ws, 16), noise_mode="const")
    assert out.shape == (2, 6, 32, 32)
    with pytest.raises(ValueError, match="ws must be"):
        s(torch.randn(2, s.num_ws + 1, 16))


def test_block_noise_modes_and_skip_image():
    torch.manual_seed(0)
    b = SynthesisBlock(8, 8, w_dim=4, resolution=8, img_channels=3, is_last=False, conv_clamp=None).eval()
    with torch.no_grad():
        b.conv0.noise_strength.fill_(0.5)
        b.conv1.noise_strength.fill_(0.5)
    x, img, ws = torch.randn(2, 8, 4, 4), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4)
    c1, c2 = b(x, img, ws, noise_mode="const"), b(x, img, ws, noise_mode="const")
    r1, r2 = b(x, img, ws, noise_mode="random"), b(x, img, ws, noise_mode="random")
    n1 = b(x, img, ws, noise_mode="none")
    assert torch.equal(c1[0], c2[0]) and not torch.equal(r1[0], r2[0]) and not torch.equal(c1[0], n1[0])
    # skip architecture: img_out = upsample(img_in) + torgb(x_out)
    y = b.torgb(c1[0], ws[:, 2])
    torch.testing.assert_close(c1[1], upsample2d(img, b.resample_filter) + y, atol=1e-5, rtol=1e-5)
    # fused and non-fused modulated conv agree inside a block
    torch.testing.assert_close(b(x, img, ws, noise_mode="const", fused_modconv=False)[1], c1[1], atol=1e-4, rtol=1e-4)


def test_conv_clamp_is_applied():
    torch.manual_seed(0)
    b = SynthesisBlock(0, 8, w_dim=4, resolution=4, img_channels=3, is_last=True, conv_clamp=0.05)
    x, img = b(None, None, torch.randn(2, 2, 4) * 10)
    assert x.abs().max() <= 0.05 * np.sqrt(2) + 1e-6 and img.abs().max() <= 0.05 + 1e-6
