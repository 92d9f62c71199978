"""EG3D's dual discriminator: a StyleGAN2 ResNet discriminator that judges the final image and the raw neural rendering
together, conditioned on the camera through a projection (cmap) of the 25-float label.

Written from the StyleGAN2 paper (Karras et al. 2020, ResNet D, minibatch standard deviation), the EG3D paper (Chan
et al. 2022, §4 "dual discrimination", camera-conditioned D) and the official
`training/dual_discriminator.py` (NVlabs/eg3d).
Module and parameter names equal NVlabs' so official state dicts load as is (92 entries for FFHQ-512).

    x_in   = cat(image (N,3,S,S), resize(image_raw (N,3,R,R) -> S, bilinear antialiased))        (N, 6, S, S)
    x      = b_S(x_in) -> b_{S/2} -> ... -> b_8                                                  (N, C_4, 4, 4)
    cmap   = mapping(c) (8-layer MLP on the label, no z)                                        (N, cmap_dim)
    logit  = < epilogue(x), cmap > / sqrt(cmap_dim)                                              (N, 1)

Block at resolution r (ResNet): y = skip(x) * sqrt(1/2) [1x1, FIR-down 2x, no bias];
x = conv1(conv0(x)) * sqrt(1/2) [3x3 lrelu; conv1 FIR-down 2x]; out = x + y; the first block starts with fromrgb (1x1).
Epilogue: minibatch stddev (group 4, 1 channel) -> conv 3x3 -> fc (C*16 -> C) -> out (C -> cmap_dim).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..layers import FullyConnectedLayer, describe, leaky_relu_gain
from .stylegan2 import MappingNetwork, bias_act, setup_filter, upfirdn2d

__all__ = [
    "Conv2dLayer",
    "DiscriminatorBlock",
    "MinibatchStdLayer",
    "DiscriminatorEpilogue",
    "DualDiscriminator",
    "filtered_resizing",
    "discriminator_kwargs",
]


def filtered_resizing(
    image: Float[Tensor, "n c h w"], size: int, filter_mode: str = "antialiased"
) -> Float[Tensor, "n c size size"]:
    """EG3D's resize of the raw image to the discriminator's resolution (and of real images to the neural one).

    'antialiased': bilinear with antialias (a box-widened tent when shrinking); 'bilinear': plain bilinear;
    'none': no resizing (must already be `size`).
    """
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    if filter_mode == "antialiased":
        return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if filter_mode == "bilinear":
        return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
    raise ValueError(
        f"filtered_resizing: image is {tuple(image.shape[-2:])}, not {size}, and filter_mode={filter_mode!r}"
    )


class Conv2dLayer(nn.Module):
    """Equalised-LR conv, optional FIR low-pass + decimation, bias, activation, clamp: (N,I,H,W) -> (N,O,H/d,W/d).

    y = clamp(act(conv(blur(x), weight / sqrt(I k^2), stride=down) + b) * act_gain * gain, +-conv_clamp * gain)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
    ):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"Conv2dLayer: unsupported activation {activation!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = leaky_relu_gain if activation == "lrelu" else 1.0
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: Float[Tensor, "n i h w"], gain: float = 1.0) -> Float[Tensor, "n o ho wo"]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2dLayer: expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        w = self.weight * self.weight_gain
        if self.down == 1:
            x = F.conv2d(x, w, padding=self.padding)
        else:
            # low-pass first (the FIR filter, padded so that the strided conv lands on H / down), then decimate.
            f = self.resample_filter
            fw = f.shape[-1]
            p0 = self.padding + (fw - self.down + 1) // 2
            p1 = self.padding + (fw - self.down) // 2
            if self.kernel_size == 1:
                x = upfirdn2d(x, f, down=self.down, padding=(p0, p1, p0, p1))
                x = F.conv2d(x, w)
            else:
                x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
                x = F.conv2d(x, w, stride=self.down)
        b = self.bias if self.bias is not None else torch.zeros(self.out_channels, dtype=x.dtype, device=x.device)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, self.activation, self.act_gain * gain, clamp)

    def extra_repr(self) -> str:
        return describe(
            self, "in_channels", "out_channels", k=self.kernel_size, activation=self.activation, down=self.down
        )


class DiscriminatorBlock(nn.Module):
    """ResNet block at `resolution`: (N, in, r, r) -> (N, out, r/2, r/2); the first block (in_channels == 0) reads the
    image (N, img_channels, r, r) through fromrgb."""

    def __init__(
        self,
        in_channels: int,  # 0: the first block, which reads the image through fromrgb
        tmp_channels: int,
        out_channels: int,
        *,
        resolution: int,
        img_channels: int,
        architecture: Literal["resnet"] = "resnet",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        freeze_layers: int = 0,
        **_unused,
    ):
        super().__init__()
        if architecture != "resnet":
            raise ValueError(f"DiscriminatorBlock: only the 'resnet' architecture is implemented, got {architecture!r}")
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.use_fp16 = use_fp16  # informational: computed in float32
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            3,
            activation="lrelu",
            down=2,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, None]:
        r = self.resolution
        if self.in_channels == 0:
            if img is None or img.shape[1:] != (self.img_channels, r, r):
                raise ValueError(
                    f"DiscriminatorBlock b{r}: expected an image (N, {self.img_channels}, {r}, {r}), "
                    f"got {None if img is None else tuple(img.shape)}"
                )
            x = self.fromrgb(img.to(torch.float32))
        elif x is None or x.shape[1:] != (self.in_channels, r, r):
            raise ValueError(
                f"DiscriminatorBlock b{r}: expected (N, {self.in_channels}, {r}, {r}), "
                f"got {None if x is None else tuple(x.shape)}"
            )
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return x + y, None

    def extra_repr(self) -> str:
        return describe(self, "resolution", architecture="resnet")


class MinibatchStdLayer(nn.Module):
    """Appends `num_channels` feature maps holding the standard deviation of the features within groups of samples.

    With N = G * M, sample n belongs to group n mod M (the batch viewed as (G, M, ...)): groups are *strided*, so a
    global batch split strided across ranks (rank k takes samples k::K) keeps the same groups on every rank.
    (N, C, H, W) -> (N, C + num_channels, H, W).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Float[Tensor, "n c h w"]) -> Float[Tensor, "n c1 h w"]:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g != 0:
            raise ValueError(f"minibatch stddev: batch {n} is not a multiple of the group size {g}")
        if c % f != 0:
            raise ValueError(f"minibatch stddev: {c} channels not divisible into {f} groups")
        y = x.reshape(g, n // g, f, c // f, h, w)  # (G, M, F, c, H, W): group m = samples m, m + M, ...
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group   (M, F, c, H, W)
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # mean stddev per group & channel group   (M, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # back to the batch   (N, F, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return describe(self, "group_size", "num_channels")


class DiscriminatorEpilogue(nn.Module):
    """(N, C, 4, 4) features + cmap (N, cmap_dim) -> logits (N, 1)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: Literal["resnet"] = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, 3, activation=activation, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Float[Tensor, "n c 4 4"], cmap: Float[Tensor, "n cmap"] | None) -> Float[Tensor, "n 1"]:
        r = self.resolution
        if x.shape[1:] != (self.in_channels, r, r):
            raise ValueError(f"epilogue: expected (N, {self.in_channels}, {r}, {r}), got {tuple(x.shape)}")
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)  # (n, cmap_dim)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))  # projection discriminator
        return x


class DualDiscriminator(nn.Module):
    """EG3D's DualDiscriminator: {'image' (N,3,S,S), 'image_raw' (N,3,R,R)} + camera label c (N, 25) -> logits (N, 1).

    Constructor kwargs are EG3D's (`c_dim, img_resolution, img_channels, architecture, channel_base, channel_max,
    num_fp16_res, conv_clamp, cmap_dim, disc_c_noise, block_kwargs, mapping_kwargs, epilogue_kwargs`).
    `disc_c_noise` > 0 adds N(0, (std_batch(c) * disc_c_noise)^2) to the label during training (EG3D's option to keep
    D from keying on the exact pose).
    """

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: Literal["resnet"] = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        conv_clamp: float | None = 256,
        cmap_dim: int | None = None,
        disc_c_noise: float = 0.0,
        block_kwargs: dict | None = None,
        mapping_kwargs: dict | None = None,
        epilogue_kwargs: dict | None = None,
    ):
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"DualDiscriminator: img_resolution must be a power of two >= 8, got {img_resolution}")
        self.init_kwargs = dict(
            c_dim=c_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            architecture=architecture,
            channel_base=channel_base,
            channel_max=channel_max,
            num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp,
            cmap_dim=cmap_dim,
            disc_c_noise=disc_c_noise,
            block_kwargs=dict(block_kwargs or {}),
            mapping_kwargs=dict(mapping_kwargs or {}),
            epilogue_kwargs=dict(epilogue_kwargs or {}),
        )
        img_channels *= 2  # final image + resized raw image
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.disc_c_noise = float(disc_c_noise)
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(
                in_channels,
                channels[res],
                channels[res // 2],
                resolution=res,
                img_channels=img_channels,
                architecture=architecture,
                use_fp16=(res >= fp16_resolution),
                conv_clamp=conv_clamp,
                **(block_kwargs or {}),
            )
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **(mapping_kwargs or {})
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4],
            cmap_dim=cmap_dim,
            resolution=4,
            img_channels=img_channels,
            architecture=architecture,
            conv_clamp=conv_clamp,
            **(epilogue_kwargs or {}),
        )
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def forward(
        self, img: dict[str, Tensor], c: Float[Tensor, "n c_dim"], update_emas: bool = False, **_unused
    ) -> Float[Tensor, "n 1"]:
        image, image_raw = img["image"], img["image_raw"]
        s = self.img_resolution
        if image.ndim != 4 or image.shape[1:] != (self.img_channels // 2, s, s):
            raise ValueError(
                f"DualDiscriminator: image must be (N, {self.img_channels // 2}, {s}, {s}), got {tuple(image.shape)}"
            )
        if image_raw.ndim != 4 or image_raw.shape[:2] != image.shape[:2]:
            raise ValueError(
                f"DualDiscriminator: image_raw must be (N, {self.img_channels // 2}, R, R) with the "
                f"image's batch, got {tuple(image_raw.shape)}"
            )
        raw_up = filtered_resizing(image_raw, size=s)  # (n, 3, s, s)
        x_img = torch.cat([image, raw_up], dim=1)  # (n, 6, s, s)

        cmap = None
        if self.c_dim > 0:
            if c.ndim != 2 or c.shape != (image.shape[0], self.c_dim):
                raise ValueError(f"DualDiscriminator: c must be ({image.shape[0]}, {self.c_dim}), got {tuple(c.shape)}")
            if self.disc_c_noise > 0 and self.training:
                c = c + torch.randn_like(c) * c.std(dim=0) * self.disc_c_noise
            cmap = self.mapping(None, c)  # (n, cmap_dim)

        x = None
        for res in self.block_resolutions:
            x, _ = getattr(self, f"b{res}")(x, x_img if x is None else None)
        return self.b4(x, cmap)

    def extra_repr(self) -> str:
        return describe(self, "c_dim", "img_resolution", "cmap_dim")


# Per preset: (default image size, channel_base, channel_max, num_fp16_res, conv_clamp, cmap_dim, mapping layers).
_D_SIZES = {
    "ffhq512": (512, 32768, 512, 4, 256, None, None),  # EG3D's FFHQ-512 D exactly
    "small": (64, 4096, 128, 0, None, 128, 2),
    "medium": (128, 8192, 128, 0, None, 128, 2),  # the small widths one octave up (64 ch at 128 px)
    "tiny": (32, 256, 32, 0, None, 32, 2),
}


def discriminator_kwargs(preset: str, img_resolution: int | None = None) -> dict:
    """DualDiscriminator kwargs matching a generator preset (core/eg3d/presets.py).

    ffhq512: EG3D's FFHQ-512 D exactly (92 state-dict entries). small / medium / tiny: narrower channels, a 2-layer
    label mapping and no conv clamp, sized so that D costs about as much as G on a CPU.
    """
    if preset not in _D_SIZES:
        raise ValueError(f"no discriminator configuration for preset {preset!r} ({', '.join(_D_SIZES)})")
    size, channel_base, channel_max, fp16, clamp, cmap_dim, mapping_layers = _D_SIZES[preset]
    return dict(
        c_dim=25,
        img_resolution=img_resolution or size,
        img_channels=3,
        architecture="resnet",
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=fp16,
        conv_clamp=clamp,
        cmap_dim=cmap_dim,
        disc_c_noise=0.0,
        block_kwargs={"freeze_layers": 0} if preset == "ffhq512" else {},
        mapping_kwargs={} if mapping_layers is None else {"num_layers": mapping_layers},
        epilogue_kwargs={"mbstd_group_size": 4},
    )
