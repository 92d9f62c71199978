"""Text-to-image sampling from a loaded `Prior`: DDIM with classifier-free guidance, and image grids.

    images = sample_images(prior, ["a red cube, side view"], steps=50, guidance=5.0, seed=0)   # (N, 3, r, r) in [0, 1]
    save_sample_grid(path, images, cols=8, scale=2)                                            # PNG

Works for pixel priors (x is the image in [-1, 1]) and latent priors (x is decoded by the VAE at the end).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .prior import Prior

__all__ = ["sample_images", "save_sample_grid"]


def _noise_seed(seed: int, i: int) -> int:
    """The seed of image i's initial noise: seed * 100003 + i, wrapped to torch's 64 bits (as torch reads a negative
    seed), so any 64-bit `seed` gives a valid one."""
    return (seed * 100003 + i) % 2**64


@torch.no_grad()
def sample_images(
    prior: Prior,
    prompts: list[str] | str,
    steps: int = 50,
    guidance: float = 5.0,
    seed: int = 0,
    negative: str = "",
    eta: float = 0.0,
    batch_size: int = 64,
) -> Tensor:
    """DDIM samples for the prompts, one image per prompt: (N, 3, resolution, resolution) in [0, 1].

    The initial noise of image i depends only on (seed, i), so a prompt list can be split across calls.
    guidance: CFG scale s (eps = eps_uncond + s (eps_cond - eps_uncond)); 1 disables the unconditional branch.
    """
    from diffusers import DDIMScheduler

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    scheduler = DDIMScheduler.from_config(prior.scheduler.config)
    scheduler.set_timesteps(steps)
    side = prior.resolution // prior.vae_scale_factor
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        noise = torch.stack(
            [
                torch.randn(
                    prior.latent_channels, side, side, generator=torch.Generator().manual_seed(_noise_seed(seed, i))
                )
                for i in range(start, start + len(chunk))
            ]
        ).to(prior.device)  # (n, C, s, s)
        emb = prior.encode_prompt(chunk, [negative] * len(chunk))
        x = noise * scheduler.init_noise_sigma
        gen = torch.Generator().manual_seed(seed)
        for t in scheduler.timesteps:
            if guidance == 1.0:
                eps = prior.predict_noise(x, t, emb.cond)
            else:
                eps = prior.predict_noise(x, t, emb.cond, emb.uncond, guidance_scale=guidance)
            x = scheduler.step(eps, t, x, eta=eta, generator=gen).prev_sample
        out.append(prior.decode_latents(x).cpu())
    return torch.cat(out)


def save_sample_grid(path, images: Tensor, cols: int = 8, scale: int = 1):
    """images (N, 3, H, W) in [0, 1] -> one PNG grid (nearest-neighbour upscaled by `scale`)."""
    from ..io.images import make_grid, save_png, to_uint8

    if scale > 1:
        images = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    return save_png(path, make_grid(to_uint8(images, (0.0, 1.0)), cols=cols, pad=2))
