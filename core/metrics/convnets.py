"""What the small-world metric nets share (ID-sw in identity.py, the FID-sw / KID-sw encoder in smallworld.py): a
64 px input in [-1, 1], a stack of 4x4 stride-2 convolutions with leaky ReLU (each halves the side), and loading a
trained net, frozen, from its checkpoint folder (default: the shipped one). `resize` also sizes ArcFace's input.

    convs = strided_convs([3, 32, 64, 128, 128])    # nn.ModuleList; state-dict keys convs.<i>.weight / .bias
    x = conv_features(convs, images)                # (n, 3, h, w) in [0, 1] -> (n, 128, 4, 4) at RES = 64
"""

from __future__ import annotations

import os
from pathlib import Path

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..io.assets import require_shipped
from ..io.checkpoint import load_checkpoint

__all__ = ["RES", "conv_features", "load_frozen", "resize", "strided_convs"]

RES = 64  # the input side of the small-world nets (the size they see the worlds' renders at)


def resize(images: Float[Tensor, "n c h w"], res: int) -> Float[Tensor, "n c res res"]:
    """Antialiased bilinear resize to res x res; images already that size are returned as they are."""
    if tuple(images.shape[-2:]) == (res, res):
        return images
    return F.interpolate(images, size=(res, res), mode="bilinear", align_corners=False, antialias=True)


def strided_convs(channels: list[int]) -> nn.ModuleList:
    """4x4 stride-2 convolutions (padding 1) from each channel count to the next."""
    return nn.ModuleList(
        nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(channels[:-1], channels[1:], strict=True)
    )


def conv_features(convs: nn.ModuleList, images: Float[Tensor, "n 3 h w"]) -> Tensor:
    """`images` in [0, 1], resized to RES and mapped to [-1, 1], through each conv + leaky ReLU (0.2)."""
    x = resize(images.float(), RES) * 2 - 1
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.2)
    return x


def load_frozen(cls: type[nn.Module], path: str | os.PathLike | None, fmt: str, shipped: Path, what: str, hint: str):
    """`cls()` with the weights of the checkpoint folder `path` (format `fmt`; None: the `shipped` folder, or a
    FileNotFoundError naming `what` and the `hint` when it is absent), in eval mode, without gradients.
    Returns (net, the folder's model.json)."""
    if path is None:
        path = require_shipped(
            shipped, "model.json", f"no shipped {what}: expected model.json + model.safetensors in {shipped}; {hint}"
        )
    tensors, meta = load_checkpoint(path, expect_format=fmt)
    net = cls()
    net.load_state_dict(tensors)
    return net.eval().requires_grad_(False), meta
