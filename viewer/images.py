"""Render outputs -> display images (uint8 RGBA, rows top to bottom). Torch/numpy only, no GL."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["OUTPUTS", "BACKGROUNDS", "signed_to_unit", "to_rgba", "depth_image", "normals_from_depth", "rgba_u8"]

OUTPUTS = ("final", "raw", "depth", "normals", "opacity")
OUTPUT_LABELS = {
    "final": "final RGB (super-res)",
    "raw": "raw neural image",
    "depth": "depth",
    "normals": "normals (from depth)",
    "opacity": "opacity",
}
BACKGROUNDS = ("model", "black", "white", "grey")
_BG = {"black": 0.0, "white": 1.0, "grey": 0.5}


def signed_to_unit(x: torch.Tensor) -> torch.Tensor:
    """EG3D images in [-1, 1] -> [0, 1]."""
    return ((x + 1) / 2).clamp(0, 1)


def rgba_u8(img01: torch.Tensor) -> np.ndarray:
    """(3 or 1, H, W) in [0, 1] -> (H, W, 4) uint8, alpha 255."""
    img = img01.detach().float().cpu()
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    rgb = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    out = np.full((*rgb.shape[:2], 4), 255, np.uint8)
    out[..., :3] = rgb
    return out


DEPTH_MASK_OPACITY = 0.5  # depth output: pixels at most this opaque show the background


def depth_image(depth: torch.Tensor, opacity: torch.Tensor, background: float) -> torch.Tensor:
    """(1, H, W) ray distance and opacity -> (1, H, W) grey in [0, 1]: near = bright, normalised over the object's
    pixels (opacity > DEPTH_MASK_OPACITY); every other pixel is exactly `background` (the expected depth of a nearly
    transparent ray is noise: unmasked, it drew black and white shards around the object)."""
    mask = opacity > DEPTH_MASK_OPACITY
    vals = depth[mask] if bool(mask.any()) else depth.reshape(-1)
    lo, hi = float(vals.min()), float(vals.max())
    img = 1 - ((depth - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
    return torch.where(mask, img, torch.full_like(img, float(background)))


def normals_from_depth(depth: torch.Tensor, cameras) -> torch.Tensor:
    """Camera-space unit normals (3, H, W) (OpenCV axes; towards the camera has z < 0) from a ray-distance map.

    Points P = o + t d per pixel; n = normalize(dP/dx x dP/dy) with central differences (replicated at the border)."""
    _, h, w = depth.shape
    rays = cameras.rays(h, w)
    pts = rays.origins[0] + depth.reshape(-1, 1) * rays.directions[0]  # (h*w, 3) world
    pts = pts.reshape(h, w, 3).permute(2, 0, 1)[None]  # (1, 3, h, w)
    p = F.pad(pts, (1, 1, 1, 1), mode="replicate")[0]
    dx = (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) / 2
    dy = (p[:, 2:, 1:-1] - p[:, :-2, 1:-1]) / 2
    n = torch.linalg.cross(dx, dy, dim=0)  # x right, y down: points towards the camera
    n = F.normalize(n, dim=0)
    rot = cameras.cam2world[0, :3, :3]
    return torch.einsum("ji,jhw->ihw", rot, n)  # world -> camera: R^T n


def to_rgba(out: dict, output: str, background: str, cameras=None, white_back: bool = False) -> np.ndarray:
    """Generator render dict (image, image_raw, image_depth, image_opacity; batch of one) -> (H, W, 4) uint8.

    background "model" keeps the generator's own (black, or white for a `white_back` model); black / white / grey
    replace it in the raw, depth and normals outputs (the final image is the super-resolution's, as it is)."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {OUTPUTS}")
    out = {k: v.detach().float().cpu() for k, v in out.items() if isinstance(v, torch.Tensor)}  # CUDA renders too
    if output == "final":
        return rgba_u8(signed_to_unit(out["image"][0]))
    opacity = out["image_opacity"][0].clamp(0, 1)
    bg = _BG.get(background)
    if output == "raw":
        img = signed_to_unit(out["image_raw"][0])  # over the model's background
        if bg is not None:
            if white_back:
                img = img - (1 - opacity)  # back to premultiplied over black
            img = img + (1 - opacity) * bg
        return rgba_u8(img)
    if bg is None and white_back:
        bg = 1.0
    if output == "opacity":
        return rgba_u8(opacity)
    depth = out["image_depth"][0]
    if output == "depth":
        return rgba_u8(depth_image(depth, opacity, bg if bg is not None else 0.0))
    if cameras is None:
        raise ValueError("normals output needs the cameras")
    n = normals_from_depth(depth, cameras)
    img = (n * torch.tensor([1.0, -1.0, -1.0])[:, None, None] + 1) / 2  # x right, y up, z to the viewer
    img = img * opacity + (1 - opacity) * (bg if bg is not None else 0.0)
    return rgba_u8(img)
