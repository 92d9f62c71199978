"""EG3D's super-resolution modules: the raw neural rendering (RGB + 32 features) -> the final image.

All variants take rgb (N, 3, r, r) and features (N, C, r, r) from the renderer plus the generator's ws, use only the
last w (repeated 3 times, for the conv0, conv1 and torgb of each block), bilinearly resize the inputs
(antialiased when shrinking) to `input_resolution`, and run two skip-architecture SynthesisBlocks:

    SuperresolutionHybrid2X   (128 px): block0 at r (no upsampling), block1 r -> 2r; channels 128, 64; r = 64
    SuperresolutionHybrid4X   (256 px): same structure, r = 128 (inputs only ever *up*-sized)
    SuperresolutionHybrid8XDC (512 px): block0 r -> 2r, block1 2r -> 4r; channels 256, 128; r = 128
    SuperresolutionHybrid8X   (512 px): as 8XDC with channels 128, 64 (older models)

conv_clamp is 256 when `sr_num_fp16_res > 0` (the official fp16 setting), else None. State-dict names equal EG3D's
(`block0.*`, `block1.*`, plus a top-level `resample_filter` in every variant except 8XDC).

tristudio extensions (never present in official configs): `sr_kwargs` may carry `block_channels=(c0, c1)` and
`input_resolution` to build smaller heads for CPU presets, and `w_dim` follows the generator (official: 512).
"""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from .stylegan2 import SynthesisBlock, setup_filter

__all__ = [
    "SuperresolutionHybrid2X",
    "SuperresolutionHybrid4X",
    "SuperresolutionHybrid8X",
    "SuperresolutionHybrid8XDC",
    "SUPERRESOLUTION_MODULES",
    "superresolution_class",
]


class _HybridSR(nn.Module):
    """Two SynthesisBlocks after a resize of the inputs; subclasses fix the official sizes."""

    scale: int = 2  # img_resolution / input_resolution
    first_block_up: bool = False  # block0 upsamples (8X variants) or keeps the resolution (2X / 4X)
    default_channels: tuple[int, int] = (128, 64)
    has_resample_filter: bool = True
    resize_only_up: bool = False  # 4X: resize only when the input is smaller than input_resolution

    def __init__(
        self,
        channels: int,
        img_resolution: int,
        sr_num_fp16_res: int,
        sr_antialias: bool,
        num_fp16_res: int = 4,  # accepted and ignored, as in EG3D
        conv_clamp=None,  # ignored: derived from sr_num_fp16_res
        channel_base=None,  # ignored
        channel_max=None,  # ignored
        w_dim: int = 512,
        block_channels: tuple[int, int] | list[int] | None = None,
        input_resolution: int | None = None,
        **block_kwargs,
    ):
        super().__init__()
        if img_resolution % self.scale:
            raise ValueError(
                f"{type(self).__name__}: img_resolution {img_resolution} is not a multiple of {self.scale}"
            )
        self.input_resolution = input_resolution or img_resolution // self.scale
        if self.input_resolution * self.scale != img_resolution:
            raise ValueError(
                f"{type(self).__name__}: input_resolution {self.input_resolution} x {self.scale} != "
                f"img_resolution {img_resolution}"
            )
        self.img_resolution = img_resolution
        self.sr_antialias = sr_antialias
        c0, c1 = tuple(block_channels) if block_channels is not None else self.default_channels
        use_fp16 = sr_num_fp16_res > 0
        clamp = 256 if use_fp16 else None
        r = self.input_resolution
        r0 = 2 * r if self.first_block_up else r

        def block(in_channels: int, out_channels: int, resolution: int, is_last: bool, up: int) -> SynthesisBlock:
            return SynthesisBlock(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                img_channels=3,
                is_last=is_last,
                use_fp16=use_fp16,
                conv_clamp=clamp,
                up=up,
                **block_kwargs,
            )

        self.block0 = block(channels, c0, r0, is_last=False, up=2 if self.first_block_up else 1)
        self.block1 = block(c0, c1, img_resolution, is_last=True, up=2)
        if self.has_resample_filter:
            self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def forward(
        self, rgb: Float[Tensor, "n 3 r r"], x: Float[Tensor, "n c r r"], ws: Float[Tensor, "n k w"], **block_kwargs
    ) -> Float[Tensor, "n 3 R R"]:
        ws = ws[:, -1:, :].repeat(1, 3, 1)  # (n, 3, w): the last w drives every SR layer
        size = self.input_resolution
        needs = x.shape[-1] < size if self.resize_only_up else x.shape[-1] != size
        if needs:
            x, rgb = (
                F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=self.sr_antialias)
                for t in (x, rgb)
            )
        x, rgb = self.block0(x, rgb, ws, **block_kwargs)
        x, rgb = self.block1(x, rgb, ws, **block_kwargs)
        return rgb.contiguous()


class SuperresolutionHybrid2X(_HybridSR):
    """128 px output from a 64 px rendering (EG3D's shapenet-128 head)."""

    scale, first_block_up, default_channels = 2, False, (128, 64)


class SuperresolutionHybrid4X(_HybridSR):
    """256 px output from a 128 px (resized) rendering."""

    scale, first_block_up, default_channels, resize_only_up = 2, False, (128, 64), True


class SuperresolutionHybrid8X(_HybridSR):
    """512 px output, narrow variant."""

    scale, first_block_up, default_channels = 4, True, (128, 64)


class SuperresolutionHybrid8XDC(_HybridSR):
    """512 px output from a 128 px rendering, 256/128 channels ("DC" = double channels): FFHQ / AFHQ models."""

    scale, first_block_up, default_channels, has_resample_filter = 4, True, (256, 128), False


SUPERRESOLUTION_MODULES = {
    cls.__name__: cls
    for cls in (SuperresolutionHybrid2X, SuperresolutionHybrid4X, SuperresolutionHybrid8X, SuperresolutionHybrid8XDC)
}


def superresolution_class(name: str) -> type[_HybridSR]:
    """'training.superresolution.SuperresolutionHybrid8XDC' (EG3D's rendering_kwargs value) or the bare class name."""
    short = name.rsplit(".", 1)[-1]
    if short not in SUPERRESOLUTION_MODULES:
        raise ValueError(f"unknown superresolution_module {name!r}; known: {sorted(SUPERRESOLUTION_MODULES)}")
    return SUPERRESOLUTION_MODULES[short]
