"""DreamFusion step speed: steps/s at 64^2 (and 32^2) renders with the shipped small-world prior (the tiny random
pixel prior when it is not shipped), the share of a step spent outside the UNet, and one SDS step with a real-size
Stable Diffusion 1.5 UNet + VAE built from its config with random weights (skipped in quick mode).

The machine is shared: each row carries the 1-minute load average and the process CPU time per step."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

TITLE = "DreamFusion SDS step (field + renderer + prior)"


def _prior(dev: torch.device):
    from ..io.assets import shipped_prior_path
    from ..priors import load_prior

    shipped = shipped_prior_path()
    if (shipped / "model_index.json").is_file():
        return load_prior(shipped, device=dev), "shipped small-world"
    from ..priors.testing import build_tiny_pixel_prior

    folder = Path(tempfile.mkdtemp(prefix="tristudio-bench-")) / "prior"
    return load_prior(build_tiny_pixel_prior(folder), device=dev), "tiny random (not shipped yet)"


class _UNetTimer:
    """Wall time spent inside the prior's UNet forward calls."""

    def __init__(self, unet):
        self.unet, self.seconds, self.cpu_seconds, self._orig = unet, 0.0, 0.0, unet.forward

        def timed(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return self._orig(*a, **k)
            finally:
                self.seconds += time.perf_counter() - t0
                self.cpu_seconds += time.process_time() - c0

        unet.forward = timed

    def close(self):
        self.unet.forward = self._orig


def _dreamfusion_rows(dev, quick: bool) -> list[dict]:
    from ..dreamfusion.optimize import DreamFusion, DreamFusionConfig

    prior, which = _prior(dev)
    rows = []
    # (sampler, training image size, NeRF render size, field samples per ray)
    configs = [
        ("grid", 64, 64, 24),
        ("grid", 64, 64, 16),
        ("uniform", 64, 64, 32),
        ("grid", 64, 32, 24),
        ("grid", 32, 32, 24),
    ]
    if quick:
        configs = [configs[0], configs[3]]
    for sampler, res, render_res, samples in configs:
        cfg = DreamFusionConfig(
            prompt="a red sphere",
            steps=1000,
            resolution=res,
            render_resolution=render_res,
            sampler=sampler,
            samples=samples,
            albedo_warmup=0.0,
        )
        df = DreamFusion(cfg, prior, dev)
        for _ in range(3):  # warm-up (grid fill, allocator)
            df.step()
        timer = _UNetTimer(prior.unet)
        n = 5 if quick else 20
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            for _ in range(n):
                df.step()
        finally:
            timer.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = f"{render_res}^2" + (f" -> {res}^2" if render_res != res else "")
        rows.append(
            {
                "prior": which,
                "sampler": sampler,
                "render": size,
                "samples/ray": cfg.samples if sampler == "grid" else cfg.samples + cfg.importance_samples,
                "steps_per_s": round(n / wall, 2),
                "ms_per_step": round(1000 * wall / n, 1),
                "cpu_ms_per_step": round(1000 * cpu / n, 1),
                "outside_unet_share": round(1 - timer.seconds / wall, 3),
                "outside_unet_share_cpu": round(1 - timer.cpu_seconds / cpu, 3),
                "threads": torch.get_num_threads(),
                "load_1min": os.getloadavg()[0],
            }
        )
    return rows


def _real_size_sd_row(dev) -> dict:
    """One SDS step of SD 1.5's shapes: VAE encode (fwd + bwd) of a 512^2 image, UNet with CFG (batch 2) on 64^2
    latents. Random weights, built from the configs in memory (no download; bench/prior.py states them)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from .prior import SD15_UNET, SD_VAE

    unet = UNet2DConditionModel(**SD15_UNET).to(dev).eval().requires_grad_(False)
    vae = AutoencoderKL(**SD_VAE).to(dev).eval().requires_grad_(False)
    image = torch.rand(1, 3, 512, 512, device=dev, requires_grad=True)
    emb = torch.randn(2, 77, 768, device=dev)
    t0 = time.perf_counter()
    z = vae.encode(image * 2 - 1).latent_dist.mean * 0.18215  # (1, 4, 64, 64)
    t_enc = time.perf_counter()
    with torch.no_grad():
        eps = unet(torch.cat([z.detach()] * 2), torch.tensor([500, 500], device=dev), encoder_hidden_states=emb).sample
    t_unet = time.perf_counter()
    (z * (eps[1:] - eps[:1])).sum().backward()
    t_end = time.perf_counter()
    return {
        "prior": "SD 1.5 shapes, random weights",
        "sampler": "-",
        "render": "512x512",
        "steps_per_s": round(1 / (t_end - t0), 3),
        "ms_per_step": round(1000 * (t_end - t0), 1),
        "vae_encode_ms": round(1000 * (t_enc - t0), 1),
        "unet_cfg_ms": round(1000 * (t_unet - t_enc), 1),
        "vae_backward_ms": round(1000 * (t_end - t_unet), 1),
        "outside_unet_share": round(1 - (t_unet - t_enc) / (t_end - t0), 3),
        "load_1min": os.getloadavg()[0],
    }


def run(device: str = "cpu", quick: bool = False) -> list[dict]:
    from .common import resolve_device

    dev = resolve_device(device)
    threads = torch.get_num_threads()
    if dev.type == "cpu" and os.getloadavg()[0] > (os.cpu_count() or 1):
        torch.set_num_threads(1)  # a busy machine: OpenMP threads waiting for each other cost up to ~10x
    try:
        rows = _dreamfusion_rows(dev, quick)
        if not quick:
            rows.append(_real_size_sd_row(dev))
    finally:
        torch.set_num_threads(threads)
    return rows
