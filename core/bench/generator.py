"""EG3D generator stages: mapping, tri-plane synthesis, volume rendering and super-resolution, FFHQ-512 config
(random weights, batch 1) at neural rendering resolutions 64 and 128, plus the full forward."""

from __future__ import annotations

import torch

from ..cameras import Cameras
from ..eg3d.generator import TriPlaneGenerator
from ..eg3d.presets import preset
from .common import resolve_device, time_call

TITLE = "EG3D TriPlaneGenerator, FFHQ-512 preset (random weights, batch 1): per-stage and full forward time"


def _rows_for(dev: torch.device, quick: bool) -> list[dict]:
    torch.manual_seed(0)
    G = TriPlaneGenerator(**preset("ffhq512")).eval().requires_grad_(False).to(dev)
    z = torch.randn(1, G.z_dim, device=dev)
    cams = Cameras.orbit(0.3, 0.1, pivot=(0.0, 0.0, 0.2)).to(dev)
    c = cams.label()  # (1, 25) EG3D label
    warmup, repeat = (0, 1) if quick else (1, 3)
    rows = []
    with torch.no_grad():
        ws = G.mapping(z, c)
        planes = G.synthesis_planes(ws)
        t_map = time_call(lambda: G.mapping(z, c), dev, warmup=1, repeat=repeat)
        t_syn = time_call(lambda: G.synthesis_planes(ws), dev, warmup=warmup, repeat=repeat)
        for res in (64, 128):
            feats = G.render_planes(planes, ws, cams, res, run_superres=False)["image_features"]
            t_ren = time_call(
                lambda r=res: G.render_planes(planes, ws, cams, r, run_superres=False), dev, warmup, repeat
            )
            t_sr = time_call(lambda f=feats: G.superresolution(f[:, :3], f, ws, noise_mode="none"), dev, warmup, repeat)
            t_full = time_call(lambda r=res: G(z, c, neural_rendering_resolution=r), dev, warmup, repeat)
            rows.append(
                {
                    "device": str(dev),
                    "neural_res": res,
                    "mapping_ms": round(t_map["ms_median"], 1),
                    "synthesis_ms": round(t_syn["ms_median"], 1),
                    "render_ms": round(t_ren["ms_median"], 1),
                    "superres_ms": round(t_sr["ms_median"], 1),
                    "forward_ms": round(t_full["ms_median"], 1),
                    "forward_fps": round(1000.0 / t_full["ms_median"], 3),
                }
            )
    return rows


def run(device: str = "auto", quick: bool = False) -> list[dict]:
    dev = resolve_device(device)
    devices = [torch.device("cpu")] + ([dev] if dev.type == "cuda" else [])  # CPU always, CUDA too when present
    return [row for d in devices for row in _rows_for(d, quick)]
