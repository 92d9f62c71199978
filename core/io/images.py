"""Image conversions and files: tensors in EG3D's [-1, 1] range or [0, 1] -> uint8 arrays, grids, PNGs, depth maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .atomic import atomic_path

__all__ = ["to_uint8", "make_grid", "save_png", "depth_to_uint8", "load_png"]


def to_uint8(images: Float[Tensor, "n c h w"], value_range=(-1.0, 1.0)) -> np.ndarray:
    """(N, C, H, W) float -> (N, H, W, C) uint8, mapping value_range linearly to [0, 255] (clipped)."""
    lo, hi = value_range
    x = (images.detach().float().cpu() - lo) / (hi - lo)
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def depth_to_uint8(depth: Float[Tensor, "n 1 h w"], lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Depth (ray distance) -> (N, H, W, 1) uint8, near = bright. Range defaults to the batch's min / max."""
    d = depth.detach().float().cpu()
    lo = float(d.min()) if lo is None else lo
    hi = float(d.max()) if hi is None else hi
    x = 1 - (d - lo) / max(hi - lo, 1e-8)
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*H, cols*W, C) image, row-major."""
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, c), dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i]
    return grid


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, C) or (H, W) uint8 array as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    arr = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return path


def load_png(path: str | os.PathLike) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
