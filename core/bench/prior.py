"""Diffusion-prior costs: one UNet call with classifier-free guidance (batch 2 = cond + uncond) for the shipped
small-world prior and for real-size Stable Diffusion 1.5 / 2.1-base UNets (random weights built from their configs
in memory, 64x64 latents), and the SD VAE encode forward + backward at 512 px (what a latent prior adds per SDS step).

Runs on the device asked for (`tristudio bench prior --device cpu|cuda`). quick: the shipped prior only.
"""

from __future__ import annotations

import torch

from .common import resolve_device, time_call

TITLE = "diffusion prior UNet call (CFG batch 2) and SD VAE encode fwd+bwd"

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
)
SD21_BASE_UNET = dict(
    SD15_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True
)
SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
)


def _shipped_unet():
    """The shipped prior's UNet (or, before one is shipped, the default config with random weights)."""
    from ..io.assets import shipped_prior_path

    path = shipped_prior_path()
    if (path / "model_index.json").exists():
        from ..priors import load_prior

        prior = load_prior(path, device="cpu", dtype=torch.float32)
        return prior.unet, int(prior.text_encoder.config.hidden_size), "shipped"
    from ..priors.train_prior import PriorConfig, build_unet

    return build_unet(PriorConfig(), 96), 96, "default config, random weights"


def _unet_row(name: str, unet, text_dim: int, tokens: int, dev: torch.device, repeat: int, note: str) -> dict:
    unet = unet.to(dev).eval().requires_grad_(False)
    side = unet.config.sample_size
    x = torch.randn(2, unet.config.in_channels, side, side, device=dev)
    emb = torch.randn(2, tokens, text_dim, device=dev)
    t = torch.tensor([500, 500], device=dev)

    def call():
        with torch.no_grad():
            unet(x, t, encoder_hidden_states=emb)

    timing = time_call(call, dev, warmup=1, repeat=repeat)
    return {
        "model": name,
        "what": f"UNet fwd, CFG batch 2, {side}x{side}x{unet.config.in_channels}",
        "params_M": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
        "device": str(dev),
        "ms": round(timing["ms_median"], 1),
        "note": note,
    }


def run(device: str = "cpu", quick: bool = False) -> list[dict]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    dev = resolve_device(device)
    torch.manual_seed(0)
    unet, text_dim, note = _shipped_unet()
    rows = [_unet_row("tristudio prior_small", unet, text_dim, 77, dev, 3 if quick else 10, note)]
    if quick:
        return rows
    repeat = 2 if dev.type == "cpu" else 10
    for name, config, dim in (("SD 1.5", SD15_UNET, 768), ("SD 2.1-base", SD21_BASE_UNET, 1024)):
        big = UNet2DConditionModel(**config)
        rows.append(_unet_row(name, big, dim, 77, dev, repeat, "random weights from config"))
        del big
    vae = AutoencoderKL(**SD_VAE).to(dev).train()
    image = torch.rand(1, 3, 512, 512, device=dev, requires_grad=True)

    def encode_backward():
        latents = vae.encode(image * 2 - 1).latent_dist.sample()
        latents.sum().backward()

    timing = time_call(encode_backward, dev, warmup=1, repeat=repeat)
    rows.append(
        {
            "model": "SD VAE (f=8)",
            "what": "encode fwd+bwd, 1x3x512x512",
            "params_M": round(sum(p.numel() for p in vae.encoder.parameters()) / 1e6, 2),
            "device": str(dev),
            "ms": round(timing["ms_median"], 1),
            "note": "random weights from config",
        }
    )
    return rows
