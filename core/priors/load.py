"""`load_prior(path)`: a local diffusers folder -> `Prior`, offline only (see layout.py for the layouts)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .common import (
    PriorLoadError,
    go_offline,
    load_pretrained,
    load_tokenizer,
    model_folder,
    resolve_device,
    resolve_dtype,
)
from .layout import ANY_PRIOR, PriorLayout, detect_layout
from .prior import Prior

__all__ = ["load_prior"]

_WEIGHT_FILE = re.compile(r"\.(safetensors|bin|ckpt)$|\.index(\.fp16)?\.json$")
_FP16 = re.compile(r"\.fp16[.-]")
_TEXT_ENCODERS = ("CLIPTextModel", "CLIPTextModelWithProjection", "T5EncoderModel", "UMT5EncoderModel")


def _variant(subfolder: Path) -> str | None:
    """'fp16' when the subfolder holds only fp16-variant weights, else None.

    Variant files: x.fp16.safetensors, x.fp16-00001-of-00002.safetensors, x.safetensors.index.fp16.json.
    """
    weights = [p.name for p in subfolder.iterdir() if _WEIGHT_FILE.search(p.name)]
    if any(not _FP16.search(name) for name in weights):
        return None
    return "fp16" if weights else None


def _load_component(what: str, cls, folder: Path, layout: PriorLayout, **kwargs):
    """cls.from_pretrained of folder/what (fp16-variant files too), checked (common.load_pretrained)."""
    variant = _variant(folder / what)
    if variant is not None:
        kwargs["variant"] = variant
    return load_pretrained(cls, folder / what, layout.description, **kwargs)


def _tokenizer(folder: Path, layout: PriorLayout, text_encoder):
    """folder/tokenizer, refused unless it fits the text encoder (common.load_tokenizer)."""
    import transformers

    sub = folder / "tokenizer"
    cls = getattr(transformers, layout.classes["tokenizer"][1], None) or transformers.AutoTokenizer
    hint = ""
    if layout.text_family == "t5" and not (sub / "tokenizer.json").exists():
        hint = " (a T5 tokenizer with only spiece.model needs the sentencepiece package to convert it)"
    encoder = f"text encoder {folder / 'text_encoder'}"
    return load_tokenizer(cls, sub, layout.description, encoder, text_encoder.config.vocab_size, hint)


def _check_finite(module, where: Path, layout: PriorLayout) -> None:
    """NaN / Inf weights make black samples and zero SDS gradients without any error: refuse them on load."""
    for key, t in list(module.named_parameters()) + list(module.named_buffers()):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise PriorLoadError(
                f"{where}: weight {key} holds NaN or Inf ({layout.description}); the folder is corrupt"
            )


def load_prior(
    path: str | os.PathLike, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None
) -> Prior:
    """Load a diffusion prior from a local diffusers folder (never the network).

    path: a Stable Diffusion 1.x/2.x, DeepFloyd IF stage-I or tristudio pixel-prior folder (model_index.json), or
        a `tristudio train prior` run folder (its exported RUN/export).
    device: "auto" (CUDA if available, else CPU), "cpu", "cuda", ...
    dtype: compute dtype; None -> float32 on CPU, float16 on CUDA. fp16/bf16 weights are cast on load.
    Raises PriorLoadError (a ValueError) with one line naming the path expected and the layout looked for.
    """
    go_offline()
    folder = model_folder(path, ANY_PRIOR, "prior")  # (a training run: its exported model)
    layout = detect_layout(folder)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)

    import diffusers
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    sched_name = layout.classes["scheduler"][1]
    sched_cls = getattr(diffusers, sched_name, None)
    if sched_cls is None or not hasattr(sched_cls, "from_pretrained"):
        raise PriorLoadError(f"{folder / 'scheduler'}: unknown scheduler class {sched_name} ({layout.description})")
    text_name = layout.classes["text_encoder"][1]
    if text_name not in _TEXT_ENCODERS:
        raise PriorLoadError(f"{folder / 'text_encoder'}: text encoder {text_name} is not one of {_TEXT_ENCODERS}")

    scheduler = _load_component("scheduler", sched_cls, folder, layout)
    if not hasattr(scheduler, "alphas_cumprod"):  # e.g. a flow-matching scheduler: no DDPM noise schedule
        raise PriorLoadError(f"{folder / 'scheduler'}: {sched_name} has no alphas_cumprod ({layout.description})")
    unet = _load_component("unet", UNet2DConditionModel, folder, layout, torch_dtype=dtype)
    text_encoder = _load_component("text_encoder", getattr(transformers, text_name), folder, layout, dtype=dtype)
    vae = None
    if layout.latent:
        vae = _load_component("vae", AutoencoderKL, folder, layout, torch_dtype=dtype)
    tokenizer = _tokenizer(folder, layout, text_encoder)
    for name, module in (("unet", unet), ("text_encoder", text_encoder), ("vae", vae)):
        if module is not None:
            _check_finite(module, folder / name, layout)
            module.to(device)  # already in `dtype` (cast on load)
    return Prior(
        unet=unet,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        vae=vae,
        layout=layout.name,
        device=device,
        dtype=dtype,
        path=folder,
    )
