"""Training curves as PNG: one panel per logged quantity against step, drawn with PIL (no matplotlib).

Trainers draw theirs through `TrainingRun.plot` (core/io/training_run.py): RUN_DIR/losses.png, or another name
(DreamFusion's loss.png).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .images import save_png

__all__ = ["plot_losses"]


def plot_losses(
    records: list[dict], path: str | os.PathLike, keys=("loss_G", "loss_D", "loss_r1", "loss_density"), size=(640, 200)
) -> Path:
    """Curves of `keys` (those the records hold) against "step", one panel each; written atomically as PNG."""
    w, h = size
    keys = [k for k in keys if any(k in r for r in records)]
    canvas = Image.new("RGB", (w, max(1, len(keys)) * h), "white")
    draw = ImageDraw.Draw(canvas)
    colors = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    for pi, key in enumerate(keys):
        pts = [(r["step"], r[key]) for r in records if key in r and math.isfinite(r[key])]
        top = pi * h
        left, right, y0, y1 = 60, w - 10, top + 20, top + h - 25
        draw.rectangle([left, y0, right, y1], outline=(0, 0, 0))
        draw.text((left, top + 4), key, fill=(0, 0, 0))
        if not pts:
            continue
        xs = np.array([p[0] for p in pts], dtype=np.float64)
        ys = np.array([p[1] for p in pts], dtype=np.float64)
        lo, hi = float(ys.min()), float(ys.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        x_lo, x_hi = float(xs.min()), float(max(xs.max(), xs.min() + 1))
        px = left + (xs - x_lo) / (x_hi - x_lo) * (right - left)
        py = y1 - (ys - lo) / (hi - lo) * (y1 - y0)
        if len(px) > 1:
            draw.line(list(zip(px.tolist(), py.tolist(), strict=True)), fill=colors[pi % 4], width=1)
        else:
            draw.ellipse([px[0] - 2, py[0] - 2, px[0] + 2, py[0] + 2], fill=colors[pi % 4])
        draw.text((2, y0 - 4), f"{hi:.3g}", fill=(0, 0, 0))
        draw.text((2, y1 - 8), f"{lo:.3g}", fill=(0, 0, 0))
        draw.text((left, y1 + 4), f"step {int(x_lo)}", fill=(0, 0, 0))
        draw.text((right - 70, y1 + 4), f"step {int(x_hi)}", fill=(0, 0, 0))
    return save_png(path, np.asarray(canvas))
