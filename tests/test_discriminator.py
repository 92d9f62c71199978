"""DualDiscriminator: official names and shapes, dual input, camera conditioning, minibatch stddev, FIR down-conv."""

from __future__ import annotations

import math

import pytest
import torch

from tristudio.core.eg3d.discriminator import (
    Conv2dLayer,
    DualDiscriminator,
    MinibatchStdLayer,
    discriminator_kwargs,
)

# The official D state dict, FFHQ-512 config (NVlabs/eg3d `training/dual_discriminator.py`): name (shape), in order.
FFHQ512_D_KEYS = """
resample_filter (4, 4)
b512.resample_filter (4, 4)
b512.fromrgb.weight (64, 6, 1, 1)
b512.fromrgb.bias (64,)
b512.fromrgb.resample_filter (4, 4)
b512.conv0.weight (64, 64, 3, 3)
b512.conv0.bias (64,)
b512.conv0.resample_filter (4, 4)
b512.conv1.weight (128, 64, 3, 3)
b512.conv1.bias (128,)
b512.conv1.resample_filter (4, 4)
b512.skip.weight (128, 64, 1, 1)
b512.skip.resample_filter (4, 4)
b256.resample_filter (4, 4)
b256.conv0.weight (128, 128, 3, 3)
b256.conv0.bias (128,)
b256.conv0.resample_filter (4, 4)
b256.conv1.weight (256, 128, 3, 3)
b256.conv1.bias (256,)
b256.conv1.resample_filter (4, 4)
b256.skip.weight (256, 128, 1, 1)
b256.skip.resample_filter (4, 4)
b128.resample_filter (4, 4)
b128.conv0.weight (256, 256, 3, 3)
b128.conv0.bias (256,)
b128.conv0.resample_filter (4, 4)
b128.conv1.weight (512, 256, 3, 3)
b128.conv1.bias (512,)
b128.conv1.resample_filter (4, 4)
b128.skip.weight (512, 256, 1, 1)
b128.skip.resample_filter (4, 4)
b64.resample_filter (4, 4)
b64.conv0.weight (512, 512, 3, 3)
b64.conv0.bias (512,)
b64.conv0.resample_filter (4, 4)
b64.conv1.weight (512, 512, 3, 3)
b64.conv1.bias (512,)
b64.conv1.resample_filter (4, 4)
b64.skip.weight (512, 512, 1, 1)
b64.skip.resample_filter (4, 4)
b32.resample_filter (4, 4)
b32.conv0.weight (512, 512, 3, 3)
b32.conv0.bias (512,)
b32.conv0.resample_filter (4, 4)
b32.conv1.weight (512, 512, 3, 3)
b32.conv1.bias (512,)
b32.conv1.resample_filter (4, 4)
b32.skip.weight (512, 512, 1, 1)
b32.skip.resample_filter (4, 4)
b16.resample_filter (4, 4)
b16.conv0.weight (512, 512, 3, 3)
b16.conv0.bias (512,)
b16.conv0.resample_filter (4, 4)
b16.conv1.weight (512, 512, 3, 3)
b16.conv1.bias (512,)
b16.conv1.resample_filter (4, 4)
b16.skip.weight (512, 512, 1, 1)
b16.skip.resample_filter (4, 4)
b8.resample_filter (4, 4)
b8.conv0.weight (512, 512, 3, 3)
b8.conv0.bias (512,)
b8.conv0.resample_filter (4, 4)
b8.conv1.weight (512, 512, 3, 3)
b8.conv1.bias (512,)
b8.conv1.resample_filter (4, 4)
b8.skip.weight (512, 512, 1, 1)
b8.skip.resample_filter (4, 4)
mapping.embed.weight (512, 25)
mapping.embed.bias (512,)
mapping.fc0.weight (512, 512)
mapping.fc0.bias (512,)
mapping.fc1.weight (512, 512)
mapping.fc1.bias (512,)
mapping.fc2.weight (512, 512)
mapping.fc2.bias (512,)
mapping.fc3.weight (512, 512)
mapping.fc3.bias (512,)
mapping.fc4.weight (512, 512)
mapping.fc4.bias (512,)
mapping.fc5.weight (512, 512)
mapping.fc5.bias (512,)
mapping.fc6.weight (512, 512)
mapping.fc6.bias (512,)
mapping.fc7.weight (512, 512)
mapping.fc7.bias (512,)
b4.conv.weight (512, 513, 3, 3)
b4.conv.bias (512,)
b4.conv.resample_filter (4, 4)
b4.fc.weight (512, 8192)
b4.fc.bias (512,)
b4.out.weight (512, 512)
b4.out.bias (512,)
"""


def _expected():
    out = []
    for line in FFHQ512_D_KEYS.strip().splitlines():
        name, shape = line.split(" ", 1)
        out.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return out


def test_ffhq512_state_dict_names_and_shapes():
    D = DualDiscriminator(**discriminator_kwargs("ffhq512"))
    got = [(k, tuple(v.shape)) for k, v in D.state_dict().items()]
    assert len(got) == 92
    assert got == _expected()
    assert all(v.dtype == torch.float32 for v in D.state_dict().values())


def _tiny(seed=0):
    torch.manual_seed(seed)
    return DualDiscriminator(**discriminator_kwargs("tiny")).eval()


def _inputs(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    img = {"image": torch.randn(n, 3, 32, 32, generator=g), "image_raw": torch.randn(n, 3, 16, 16, generator=g)}
    c = torch.randn(n, 25, generator=g)
    return img, c


def test_camera_conditioning_changes_the_logit():
    D = _tiny()
    img, c = _inputs()
    base = D(img, c)
    assert base.shape == (4, 1)
    c2 = c.clone()
    c2[:, 3] += 0.5  # move the camera
    changed = D(img, c2)
    assert (changed - base).abs().min() > 1e-6
    assert torch.equal(D(img, c), base)  # and it is a function of (img, c) only


def test_both_images_are_judged():
    D = _tiny()
    img, c = _inputs()
    base = D(img, c)
    raw2 = {"image": img["image"], "image_raw": img["image_raw"] + 0.3}
    img2 = {"image": img["image"] + 0.3, "image_raw": img["image_raw"]}
    assert (D(raw2, c) - base).abs().min() > 1e-6
    assert (D(img2, c) - base).abs().min() > 1e-6


def test_projection_epilogue_is_inner_product_over_sqrt_cmap_dim():
    D = _tiny()
    img, c = _inputs()
    feats = {}
    D.b4.out.register_forward_hook(lambda m, i, o: feats.__setitem__("out", o))
    logits = D(img, c)
    cmap = D.mapping(None, c)
    expect = (feats["out"] * cmap).sum(1, keepdim=True) / math.sqrt(D.cmap_dim)
    torch.testing.assert_close(logits, expect)


def test_disc_c_noise_only_in_training():
    torch.manual_seed(0)
    D = DualDiscriminator(**{**discriminator_kwargs("tiny"), "disc_c_noise": 1.0})
    img, c = _inputs()
    D.eval()
    assert torch.equal(D(img, c), D(img, c))
    D.train()
    assert not torch.equal(D(img, c), D(img, c))


def test_minibatch_stddev_groups_are_strided():
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStdLayer(group_size=4, num_channels=1)(x)
    assert y.shape == (8, 7, 4, 4)
    # group of sample 0 = samples {0, 2, 4, 6}: its stat is the mean over (c, h, w) of the group's stddev
    grp = x[0::2]
    expect = (grp.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[0, 6], torch.full((4, 4), float(expect)))
    torch.testing.assert_close(y[2, 6], y[0, 6])
    assert not torch.allclose(y[1, 6], y[0, 6])
    # a strided shard of the batch (what one of two ranks sees) gives the same statistics
    shard = MinibatchStdLayer(group_size=4, num_channels=1)(x[0::2])
    torch.testing.assert_close(shard[:, 6], y[0::2, 6])
    with pytest.raises(ValueError, match="multiple of the group size"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 6, 4, 4))


def _blur_then_stride(x, weight, kernel_size, down=2):
    """Direct reference: zero-pad, depthwise 4x4 low-pass [1,3,3,1] x [1,3,3,1] / 64, then the conv with stride 2
    (3x3: pad 2 each side, so the strided conv lands on H / 2; 1x1: pad 1, decimate, then the 1x1 conv)."""
    f1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = (f1[:, None] * f1[None, :]) / f1.sum() ** 2
    c = x.shape[1]
    fk = f.expand(c, 1, 4, 4)
    w = weight / math.sqrt(weight.shape[1] * kernel_size**2)
    if kernel_size == 3:
        blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2)), fk, groups=c)
        return torch.nn.functional.conv2d(blurred, w, stride=down)
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1)), fk, groups=c)
    return torch.nn.functional.conv2d(blurred[..., ::down, ::down], w)


@pytest.mark.parametrize("kernel_size", [3, 1])
def test_downsampling_conv_is_blur_then_stride(kernel_size):
    torch.manual_seed(0)
    conv = Conv2dLayer(3, 5, kernel_size, bias=False, down=2)
    x = torch.randn(2, 3, 16, 16)
    y = conv(x)
    assert y.shape == (2, 5, 8, 8)
    torch.testing.assert_close(y, _blur_then_stride(x, conv.weight.detach(), kernel_size), atol=1e-5, rtol=1e-5)
    # a plain strided conv (no low-pass) is far from it on random input
    w = conv.weight.detach() / math.sqrt(3 * kernel_size**2)
    plain = torch.nn.functional.conv2d(x, w, stride=2, padding=kernel_size // 2)
    assert (plain - y).abs().mean() > 0.1 * y.abs().mean()


def test_downsampling_removes_a_checkerboard():
    """The highest frequency is exactly in the stop band of [1,3,3,1]: away from the border the output is 0, where
    a strided identity tap without the low-pass would return +-1."""
    conv = Conv2dLayer(1, 1, 3, bias=False, down=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 3.0  # identity tap, times 1 / weight_gain = sqrt(9)
    i = torch.arange(16)
    board = ((i[:, None] + i[None, :]) % 2 * 2 - 1).float()[None, None]
    y = conv(board)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.zeros(1, 1, 6, 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(conv(torch.ones(1, 1, 16, 16))[..., 1:-1, 1:-1], torch.ones(1, 1, 6, 6))
    torch.testing.assert_close(y, _blur_then_stride(board, conv.weight.detach(), 3), atol=1e-6, rtol=0)


def test_shape_errors_are_clear():
    D = _tiny()
    img, c = _inputs()
    with pytest.raises(ValueError, match="image must be"):
        D({"image": torch.randn(4, 3, 16, 16), "image_raw": img["image_raw"]}, c)
    with pytest.raises(ValueError, match="c must be"):
        D(img, c[:, :16])
