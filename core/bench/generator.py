"""EG3D generator stages: mapping, tri-plane synthesis, volume rendering and super-resolution, FFHQ-512 config
(random weights, batch 1) at neural rendering resolutions 64 and 128, plus the full forward."""

from __future__ import annotations

import torch

from ..cameras import Cameras
from ..eg3d.generator import TriPlaneGenerator
from ..eg3d.presets import preset
from .common import resolve_device, time_call

TITLE = "EG3D TriPlaneGenerator, FFHQ-512 preset (random weights, batch 1): per-stage and full forward time"


def run(device: str = "auto", quick: bool = False) -> list[dict]:
    devices = [resolve_device(device)]
    if device == "auto" and devices[0].type == "cuda":
        devices.insert(0, torch.device("cpu"))  # CPU always, CUDA too when present
    rows = []
    for dev in devices:
        torch.manual_seed(0)
        G = TriPlaneGenerator(**preset("ffhq512")).eval().requires_grad_(False).to(dev)
        z = torch.randn(1, G.z_dim, device=dev)
        c = Cameras.orbit(0.3, 0.1, pivot=(0.0, 0.0, 0.2)).label().to(dev)
        repeat = 1 if quick else 3
        with torch.no_grad():
            ws = G.mapping(z, c)
            planes = G.synthesis_planes(ws)
            t_map = time_call(lambda: G.mapping(z, c), dev, warmup=1, repeat=repeat)
            t_syn = time_call(lambda: G.synthesis_planes(ws), dev, warmup=0 if quick else 1, repeat=repeat)
            for res in (64, 128):
                raw = G.render_planes(planes, ws, c, res, run_superres=False)
                feats = raw["image_features"]

                def render(res=res):
                    return G.render_planes(planes, ws, c, res, run_superres=False)

                def superres(feats=feats):
                    return G.superresolution(feats[:, :3], feats, ws, noise_mode="none")

                def full(res=res):
                    return G(z, c, neural_rendering_resolution=res)

                t_ren = time_call(render, dev, warmup=0 if quick else 1, repeat=repeat)
                t_sr = time_call(superres, dev, warmup=0 if quick else 1, repeat=repeat)
                t_full = time_call(full, dev, warmup=0 if quick else 1, repeat=repeat)
                rows.append({
                    "device": str(dev),
                    "neural_res": res,
                    "mapping_ms": round(t_map["ms_median"], 1),
                    "synthesis_ms": round(t_syn["ms_median"], 1),
                    "render_ms": round(t_ren["ms_median"], 1),
                    "superres_ms": round(t_sr["ms_median"], 1),
                    "forward_ms": round(t_full["ms_median"], 1),
                    "forward_fps": round(1000.0 / t_full["ms_median"], 3),
                })
    return rows
