"""Held-out evaluation of a fitted field against the reference renders: PSNR and depth error on the object mask.

    PSNR = -10 log10(mean over pixels and channels of (pred - target)^2)            images in [0, 1]
    depth error = mean over mask pixels of |t_pred - t_true|                        ray distances, world units

t_pred is the renderer's expected ray distance (weights-normalised, `RenderOutput.depth`), t_true the sphere-traced
hit distance; the mask is the reference's pixel-centre hit mask. World units: the scene box has side 1
(box_warp), so a depth error of 0.01 is 1% of the box.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..cameras import Cameras
from ..render.volume import RenderOptions, render_rays
from .views import Views

__all__ = ["render_images", "psnr", "evaluate", "to_uint8_grid"]


@torch.no_grad()
def render_images(
    field: nn.Module, cameras: Cameras, resolution: int, opts: RenderOptions
) -> tuple[Float[Tensor, "n h w 3"], Float[Tensor, "n h w"], Float[Tensor, "n h w"]]:
    """(rgb in [0, 1], depth = ray distance, opacity) images of a field, rows top to bottom, one camera at a time."""
    rgbs, depths, opacities = [], [], []
    for i in range(len(cameras)):
        rays = cameras[i].rays(resolution)
        out = render_rays(field, rays.origins, rays.directions, opts)
        rgbs.append(out.features[0, :, :3].reshape(resolution, resolution, 3))
        depths.append(out.depth[0, :, 0].reshape(resolution, resolution))
        opacities.append(out.opacity[0, :, 0].reshape(resolution, resolution))
    return torch.stack(rgbs), torch.stack(depths), torch.stack(opacities)


def psnr(pred: Tensor, target: Tensor) -> float:
    mse = torch.mean((pred.float() - target.float()) ** 2).item()
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def evaluate(field: nn.Module, views: Views, opts: RenderOptions) -> dict:
    """Render the held-out views deterministically; return metrics and the rendered images."""
    was_training = field.training
    field.eval()
    try:
        rgb, depth, opacity = render_images(field, views.cameras, views.resolution, opts.replace(deterministic=True))
    finally:
        field.train(was_training)
    mask = views.mask
    depth_err = (depth[mask] - views.depth[mask]).abs()
    return {
        "psnr": psnr(rgb.clamp(0, 1), views.rgb),
        "depth_mae": depth_err.mean().item() if mask.any() else float("nan"),
        "depth_median_ae": depth_err.median().item() if mask.any() else float("nan"),
        "mask_opacity": opacity[mask].mean().item() if mask.any() else float("nan"),
        "background_opacity": opacity[~mask].mean().item() if (~mask).any() else float("nan"),
        "images": {"rgb": rgb, "depth": depth, "opacity": opacity},
    }


def to_uint8_grid(rows: list[Float[Tensor, "n h w 3"]]) -> Tensor:
    """Stack image rows (each n images side by side) into one uint8 (H_total, W_total, 3) grid."""
    lines = [r.clamp(0, 1).permute(1, 0, 2, 3).reshape(r.shape[1], -1, 3) for r in rows]
    return (torch.cat(lines, dim=0) * 255 + 0.5).to(torch.uint8)
