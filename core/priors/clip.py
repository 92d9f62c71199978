"""`load_clip(path)`: a local transformers CLIPModel folder -> `ClipModel`, offline, preprocessing in torch.

The folder holds config.json + weights + a tokenizer; preprocessor_config.json is optional (mean/std default to
CLIP's). Images are resized (shorter side, bicubic, antialiased) and centre-cropped to the vision tower's
image_size, then normalised, all in torch so gradients reach rendered images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import (
    PriorLoadError,
    go_offline,
    load_pretrained,
    load_tokenizer,
    model_folder,
    require_file,
    resolve_device,
)

__all__ = ["CLIP_MEAN", "CLIP_STD", "ClipModel", "image_processor_config", "load_clip"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def image_processor_config(size: int) -> dict:
    """preprocessor_config.json of a CLIPModel folder whose vision tower takes `size` px: CLIP's bicubic resize of
    the shorter side, centre crop, CLIP_MEAN / CLIP_STD normalisation."""
    return {
        "image_processor_type": "CLIPImageProcessor",
        "crop_size": {"height": size, "width": size},
        "size": {"shortest_edge": size},
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
        "resample": 3,
        "rescale_factor": 1 / 255,
    }


CLIP_LAYOUT = (
    "transformers CLIPModel folder (config.json, model weights, tokenizer files, optional preprocessor_config.json)"
)


class ClipModel:
    """A frozen CLIPModel with torch preprocessing. Embeddings are L2-normalised (N, D), D = projection_dim."""

    def __init__(self, model, tokenizer, device: torch.device, mean=CLIP_MEAN, std=CLIP_STD, path=None):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer, self.device, self.path = tokenizer, device, path
        self.image_size: int = int(model.config.vision_config.image_size)
        self.max_tokens: int = int(model.config.text_config.max_position_embeddings)
        self.mean = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1)

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def preprocess(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) in [0, 1] -> (N, 3, S, S) normalised pixels, S = image_size (differentiable)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"CLIP wants (N, 3, H, W) images in [0, 1], got {tuple(images.shape)}")
        s = self.image_size
        h, w = images.shape[-2:]
        if (h, w) != (s, s):
            scale = s / min(h, w)
            size = (max(s, round(h * scale)), max(s, round(w * scale)))
            images = F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
            top, left = (size[0] - s) // 2, (size[1] - s) // 2
            images = images[:, :, top : top + s, left : left + s]
        return (images.to(self.device, torch.float32) - self.mean) / self.std

    def embed_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) in [0, 1] -> (N, D) unit vectors; differentiable w.r.t. images."""
        pixels = self.preprocess(images).to(self.model.dtype)
        features = self.model.get_image_features(pixel_values=pixels)
        features = getattr(features, "pooler_output", features)  # transformers 5 may return a model output
        return F.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def embed_text(self, texts: list[str] | str) -> Tensor:
        """texts (N) -> (N, D) unit vectors (no gradient)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        features = self.model.get_text_features(
            input_ids=tokens.input_ids.to(self.device), attention_mask=tokens.attention_mask.to(self.device)
        )
        features = getattr(features, "pooler_output", features)
        return F.normalize(features.float(), dim=-1)

    def similarity(self, images: Tensor, texts: list[str] | Tensor) -> Tensor:
        """Cosine similarity (N_images, N_texts) between images (N, 3, H, W) and texts (strings or (M, D) embeds)."""
        text_emb = texts if isinstance(texts, Tensor) else self.embed_text(texts)
        return self.embed_images(images) @ text_emb.T


def _preprocessor_stats(folder: Path) -> tuple[tuple, tuple]:
    config_path = folder / "preprocessor_config.json"
    if not config_path.exists():
        return CLIP_MEAN, CLIP_STD
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PriorLoadError(f"cannot read {config_path} as JSON ({exc}); expected a {CLIP_LAYOUT}") from None
    return tuple(config.get("image_mean", CLIP_MEAN)), tuple(config.get("image_std", CLIP_STD))


def load_clip(
    path: str | os.PathLike, device: str | torch.device = "auto", dtype: torch.dtype | None = None
) -> ClipModel:
    """Load a CLIPModel folder (e.g. a local copy of openai/clip-vit-base-patch32), or a `tristudio train clip` run
    folder (its exported RUN/export), offline. dtype default float32.

    Raises PriorLoadError with one line naming the path expected and the layout looked for.
    """
    go_offline()
    folder = model_folder(path, CLIP_LAYOUT, "clip")  # (a training run: its exported model)
    require_file(folder, "config.json", CLIP_LAYOUT)
    device = resolve_device(device)
    from transformers import AutoTokenizer, CLIPModel

    model = load_pretrained(CLIPModel, folder, CLIP_LAYOUT, dtype=dtype or torch.float32)
    vocab_size = model.config.text_config.vocab_size
    tokenizer = load_tokenizer(AutoTokenizer, folder, CLIP_LAYOUT, f"CLIP text tower in {folder}", vocab_size)
    mean, std = _preprocessor_stats(folder)
    return ClipModel(model.to(device), tokenizer, device, mean, std, path=folder)
