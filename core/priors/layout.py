"""Which diffusers folder layout a prior folder has, read from its model_index.json (no weights are loaded here).

Three layouts are recognised by two facts: is there a `vae` component (latent space) and what text encoder is it?
- "sd":         Stable Diffusion 1.x / 2.x: vae + CLIP text encoder (latent space).
- "if":         DeepFloyd IF stage I: no vae + T5 text encoder (pixel space; UNet may predict a learned variance).
- "pixel-clip": tristudio's small-world prior: no vae + CLIP text encoder (pixel space).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .common import PriorLoadError, require_file

__all__ = ["ANY_PRIOR", "LAYOUTS", "PriorLayout", "detect_layout"]

LAYOUTS = {
    "sd": "Stable Diffusion 1.x/2.x layout (model_index.json unet/ vae/ text_encoder/ tokenizer/ scheduler/)",
    "if": "DeepFloyd IF stage-I layout (model_index.json unet/ text_encoder/ (T5) tokenizer/ scheduler/, no vae)",
    "pixel-clip": "tristudio pixel-prior layout (model_index.json unet/ text_encoder/ (CLIP) tokenizer/ scheduler/)",
}
ANY_PRIOR = (
    "diffusers prior folder (Stable Diffusion 1.x/2.x, DeepFloyd IF stage I or tristudio pixel prior: "
    "model_index.json unet/ text_encoder/ tokenizer/ scheduler/ [vae/])"
)

_REQUIRED = ("unet", "text_encoder", "tokenizer", "scheduler")


@dataclass(frozen=True)
class PriorLayout:
    name: str  # a key of LAYOUTS
    latent: bool  # True when a VAE maps images <-> latents
    text_family: str  # "clip" or "t5"
    classes: dict  # component -> (library, class name) as written in model_index.json

    @property
    def description(self) -> str:
        return LAYOUTS[self.name]

    @property
    def components(self) -> tuple[str, ...]:
        return _REQUIRED + (("vae",) if self.latent else ())


def _text_family(class_name: str) -> str | None:
    if class_name.startswith("CLIPText"):
        return "clip"
    if class_name.startswith(("T5Encoder", "UMT5Encoder")):
        return "t5"
    return None


def detect_layout(folder: Path) -> PriorLayout:
    """Read folder/model_index.json, name the layout and check that each component's subfolder exists."""
    index_path = require_file(folder, "model_index.json", ANY_PRIOR)
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PriorLoadError(f"cannot read {index_path} as JSON ({exc}); expected a {ANY_PRIOR}") from None
    classes = {
        key: tuple(value)
        for key, value in index.items()
        if not key.startswith("_") and isinstance(value, list) and len(value) == 2 and None not in value
    }
    if "text_encoder_2" in classes or "transformer" in classes:
        raise PriorLoadError(
            f"{index_path} describes a {index.get('_class_name', 'pipeline')} (SDXL / transformer-based), "
            f"which tristudio does not load; expected a {ANY_PRIOR}"
        )
    for key in _REQUIRED:
        if key not in classes:
            raise PriorLoadError(f"{index_path} lists no '{key}' component; expected a {ANY_PRIOR}")
    family = _text_family(classes["text_encoder"][1])
    latent = "vae" in classes
    if family is None or (latent and family == "t5"):
        raise PriorLoadError(
            f"{index_path}: text encoder {classes['text_encoder'][1]} with{'' if latent else 'out'} a vae is not a "
            f"layout tristudio loads; expected a {ANY_PRIOR}"
        )
    name = "sd" if latent else ("if" if family == "t5" else "pixel-clip")
    layout = PriorLayout(name=name, latent=latent, text_family=family, classes=classes)
    for key in layout.components:
        require_file(folder, key, layout.description)
    return layout
