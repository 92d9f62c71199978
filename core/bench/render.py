"""Tri-plane field + volume renderer: one frame of random 3x32x256^2 tri-planes with EG3D's decoder, 48 + 48 samples."""

from __future__ import annotations

import torch

from ..cameras import Cameras
from ..render.triplane import OSGDecoder
from ..render.volume import RenderOptions, render_triplanes
from .common import resolve_device, time_call

TITLE = "tri-plane render (3x32x256^2 planes, MLP 32-64-33, 48+48 samples, batch 1)"


def run(device: str = "cpu", quick: bool = False) -> list[dict]:
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(0)
    planes = (torch.randn(1, 3, 32, 256, 256, generator=gen) * 0.5).to(dev)
    decoder = OSGDecoder().to(dev).eval()
    cams = Cameras.orbit(0.3, 0.1, 2.7, pivot=(0.0, 0.0, 0.2)).to(dev)
    rows = []
    for res in (64, 128):
        for deterministic in (True,) if quick else (True, False):
            opts = RenderOptions(depth_resolution=48, depth_resolution_importance=48, deterministic=deterministic)

            def frame(res=res, opts=opts):
                with torch.no_grad():
                    render_triplanes(planes, decoder, cams, res, opts)

            t = time_call(frame, dev, warmup=1, repeat=2 if quick else 5)
            samples = res * res * (48 + 48)
            rows.append(
                {
                    "resolution": f"{res}x{res}",
                    "mode": "deterministic" if deterministic else "stochastic",
                    "device": str(dev),
                    "ms_per_frame": round(t["ms_median"], 1),
                    "fps": round(1000.0 / t["ms_median"], 2),
                    "Msamples_per_s": round(samples / (t["ms_median"] / 1000.0) / 1e6, 2),
                }
            )
    return rows
