"""`Prior`: a frozen text-conditioned diffusion model seen the way score distillation needs it.

Model space: for a latent prior (SD) x is a VAE latent (N, latent_channels, resolution/f, resolution/f) scaled by the
VAE's scaling factor; for a pixel prior (IF stage I, tristudio's small-world prior) x is the image in [-1, 1],
(N, 3, resolution, resolution). Timesteps are integers in [0, num_train_timesteps).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NoisePrediction", "Prior", "PromptEmbeddings"]


DEFAULT_SAMPLING_GUIDANCE = 7.5  # diffusers' StableDiffusionPipeline default


@dataclass
class PromptEmbeddings:
    cond: Tensor  # (N, L, D) text-encoder hidden states for the prompts
    uncond: Tensor  # (N, L, D) the same for the negative prompts ("" when none)
    negative: Tensor | None = None  # (N, L, D) the negative prompt as a condition (CSD's negative term), if any


class NoisePrediction(NamedTuple):
    eps: Tensor  # (N, C, h, w) guided eps = uncond + s * (cond - uncond)
    eps_cond: Tensor  # (N, C, h, w)
    eps_uncond: Tensor  # (N, C, h, w)


class Prior:
    """A loaded diffusion prior. Build it with `load_prior`; every module is frozen (eval, requires_grad False).

    Attributes: unet, scheduler, text_encoder, tokenizer, vae (None for pixel priors), layout (a LAYOUTS key),
    prediction_type ("epsilon" | "v_prediction" | "sample"), learned_variance (UNet outputs 2C channels, eps first),
    alphas_cumprod (T,) float32 on `device`, num_train_timesteps, resolution (image side the prior expects),
    latent_channels, device, dtype (compute dtype of the modules), sampling_guidance (the CFG scale to sample with).
    """

    def __init__(
        self,
        *,
        unet,
        scheduler,
        text_encoder,
        tokenizer,
        vae,
        layout: str,
        device: torch.device,
        dtype: torch.dtype,
        path=None,
    ):
        self.unet, self.scheduler, self.vae = unet, scheduler, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.layout, self.device, self.dtype, self.path = layout, device, dtype, path
        for module in (unet, text_encoder, vae):
            if module is not None:
                module.eval().requires_grad_(False)
        self.prediction_type: str = scheduler.config.get("prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"unsupported prediction_type {self.prediction_type!r} in the scheduler config")
        self.num_train_timesteps: int = int(scheduler.config.num_train_timesteps)
        self.alphas_cumprod: Tensor = scheduler.alphas_cumprod.detach().to(device, torch.float32)  # (T,)
        self.latent_channels: int = int(unet.config.in_channels)
        self.learned_variance: bool = int(unet.config.out_channels) == 2 * self.latent_channels
        side = unet.config.sample_size
        side = side[0] if isinstance(side, (list, tuple)) else int(side)
        self.vae_scale_factor: int = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        self.resolution: int = side * self.vae_scale_factor

    @property
    def sampling_guidance(self) -> float:
        """The classifier-free guidance scale for text-to-image sampling: the folder's own recommendation (tristudio
        exports write it in training.json "sampling") or 7.5, the Stable Diffusion / DeepFloyd IF default."""
        path = Path(self.path) / "training.json" if self.path is not None else None
        if path is None or not path.is_file():
            return DEFAULT_SAMPLING_GUIDANCE
        try:
            scale = json.loads(path.read_text()).get("sampling", {}).get("guidance_scale")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ValueError(f'{path}: not a training.json object with a "sampling" entry ({exc})') from None
        if scale is None:
            return DEFAULT_SAMPLING_GUIDANCE
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"{path}: sampling.guidance_scale must be a positive number, got {scale!r}")
        return float(scale)

    @property
    def is_latent(self) -> bool:
        return self.vae is not None

    # ---- text -------------------------------------------------------------------------------------------------
    @property
    def max_prompt_tokens(self) -> int:
        """Tokens the text encoder reads, specials included (IF pads T5 prompts to 77 like its pipeline; CLIP
        tokenizers carry their own length, 77). Longer prompts are cut at the end."""
        return 77 if self.layout == "if" else min(int(self.tokenizer.model_max_length), 512)

    def prompt_token_ids(self, text: str) -> list[int]:
        """The token ids of `text` without specials and without truncation (for length checks)."""
        return list(self.tokenizer(text, add_special_tokens=False, truncation=False).input_ids)

    def prompt_budget(self) -> int:
        """Tokens left for the text itself once the tokenizer's specials (start / end) are counted."""
        return self.max_prompt_tokens - len(self.tokenizer("", truncation=False).input_ids)

    def truncated(self, text: str) -> bool:
        """Whether `text` is longer than the text encoder reads (its end would be cut)."""
        return len(self.prompt_token_ids(text)) > self.prompt_budget()

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> Tensor:
        max_length = self.max_prompt_tokens
        tokens = self.tokenizer(
            texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        )
        ids = tokens.input_ids.to(self.device)  # (N, L)
        use_mask = self.layout == "if" or getattr(self.text_encoder.config, "use_attention_mask", False)
        mask = tokens.attention_mask.to(self.device) if use_mask else None
        return self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype)  # (N, L, D)

    def encode_prompt(self, prompts: list[str] | str, negative: list[str] | str | None = None) -> PromptEmbeddings:
        """Embed prompts and negative prompts (None -> "", a str -> the same for every prompt). No gradient."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if negative is None or isinstance(negative, str):
            negative = [negative or ""] * len(prompts)
        if len(negative) != len(prompts):
            raise ValueError(f"{len(negative)} negative prompts for {len(prompts)} prompts")
        both = self._embed(prompts + list(negative))  # (2N, L, D)
        return PromptEmbeddings(cond=both[: len(prompts)], uncond=both[len(prompts) :])

    # ---- noise prediction -------------------------------------------------------------------------------------
    def _unet_eps(self, x_t: Tensor, t: Tensor, emb: Tensor, cross_attention_kwargs=None) -> Tensor:
        """eps (B, C, h, w) from one UNet call on x_t (B, C, h, w), t (B,), emb (B, L, D)."""
        out = self.unet(
            x_t.to(self.dtype),
            t,
            encoder_hidden_states=emb.to(self.dtype),
            cross_attention_kwargs=cross_attention_kwargs,
        ).sample  # (B, C or 2C, h, w)
        if self.learned_variance:
            out = out[:, : self.latent_channels]  # IF: [eps, variance interpolation]
        out = out.to(x_t.dtype)
        if self.prediction_type == "epsilon":
            return out
        a = self.alphas_cumprod[t].to(x_t.dtype).view(-1, 1, 1, 1)  # (B,1,1,1)
        if self.prediction_type == "v_prediction":
            return a.sqrt() * out + (1 - a).sqrt() * x_t  # v = sqrt(a) eps - sqrt(1-a) x0
        return (x_t - a.sqrt() * out) / (1 - a).sqrt()  # "sample": out is x0

    def predict_noise(
        self,
        x_t: Tensor,
        t: Tensor | int,
        cond_emb: Tensor,
        uncond_emb: Tensor | None = None,
        guidance_scale: float = 1.0,
        return_parts: bool = False,
        cross_attention_kwargs=None,
    ):
        """Guided eps for noisy inputs x_t (N, C, h, w) in model space at integer timesteps t ((N,) or scalar).

        cond_emb / uncond_emb: (N, L, D) or (1, L, D) (broadcast). With uncond_emb, classifier-free guidance
        eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond) runs as one UNet call on a batch of 2N.
        Returns eps (N, C, h, w) in x_t's dtype, or a NoisePrediction(eps, eps_cond, eps_uncond) if return_parts.
        v-prediction and x0-prediction outputs are converted to eps; IF's learned-variance channels are dropped.
        Gradients flow to x_t (and to the UNet if a trainable adapter was added), not through the embeddings' source.
        """
        n = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1).expand(n)  # (N,)
        cond = cond_emb.expand(n, -1, -1)
        if uncond_emb is None:
            if return_parts:
                raise ValueError("return_parts needs uncond_emb")
            return self._unet_eps(x_t, t, cond, cross_attention_kwargs)
        uncond = uncond_emb.expand(n, -1, -1)
        eps_both = self._unet_eps(
            torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond]), cross_attention_kwargs
        )  # (2N, C, h, w)
        eps_uncond, eps_cond = eps_both.chunk(2)
        eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        return NoisePrediction(eps, eps_cond, eps_uncond) if return_parts else eps

    # ---- images <-> model space -------------------------------------------------------------------------------
    def encode_images(self, images: Tensor, sample: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """images (N, 3, H, W) in [0, 1] -> model-space x (N, latent_channels, r/f, r/f), differentiable.

        Resized (bilinear, antialiased) to the prior's resolution. Latent priors: VAE encode of 2*img-1, a sample of
        the posterior (its mean if sample=False) times the scaling factor. Pixel priors: 2*img-1.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"encode_images wants (N, 3, H, W) images in [0, 1], got {tuple(images.shape)}")
        r = self.resolution
        if images.shape[-2:] != (r, r):
            images = F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        x = images * 2 - 1  # (N, 3, r, r) in [-1, 1]
        if self.vae is None:
            return x
        dist = self.vae.encode(x.to(self.dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mean  # (N, 4, r/f, r/f)
        shift = self.vae.config.get("shift_factor") or 0.0
        return ((z - shift) * self.vae.config.scaling_factor).to(images.dtype)

    def decode_latents(self, x: Tensor) -> Tensor:
        """model-space x (N, C, h, w) -> images (N, 3, resolution, resolution) in [0, 1] (for previews)."""
        if self.vae is not None:
            shift = self.vae.config.get("shift_factor") or 0.0
            x = self.vae.decode((x / self.vae.config.scaling_factor + shift).to(self.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    def modules(self) -> dict[str, nn.Module]:
        return {
            k: m
            for k, m in (("unet", self.unet), ("text_encoder", self.text_encoder), ("vae", self.vae))
            if m is not None
        }

    def __repr__(self) -> str:
        return (
            f"Prior(layout={self.layout!r}, resolution={self.resolution}, latent_channels={self.latent_channels}, "
            f"prediction_type={self.prediction_type!r}, device={self.device}, dtype={self.dtype}, path={self.path})"
        )
