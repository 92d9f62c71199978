"""Caption vocabularies and caption builders for the procedural worlds, and DreamFusion's view words.

The vocabularies are module constants: the CLIP and text-to-image prior trained on these worlds, and DreamFusion's
view-dependent prompts, all read them from here.

View words (DreamFusion's convention), from the camera's yaw and pitch in radians (core/cameras.py: yaw = 0 is the
frontal camera on +z, pitch = elevation, > 0 from above):
    pitch >= 60 deg                      -> "overhead view"
    otherwise |yaw| <= 45 deg            -> "front view"
              |yaw| >= 135 deg           -> "back view"
              else                       -> "side view"
(yaw is wrapped to (-180, 180] first; the boundaries belong to "front" / "back").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "SHAPES",
    "COLORS",
    "MATERIALS",
    "HAIR_COLORS",
    "SKIN_TONES",
    "VIEW_WORDS",
    "FRONT_MAX_YAW_DEG",
    "BACK_MIN_YAW_DEG",
    "OVERHEAD_MIN_PITCH_DEG",
    "view_word",
    "object_caption",
    "head_caption",
    "shape_color_prompts",
    "head_prompts",
]

# The vocabularies are data: core/worlds/vocabulary.json (word -> primitive kind / albedo RGB in [0, 1] / shininess,
# in vocabulary order). Objects world: SHAPES (word -> core/worlds/scenes.py PRIMITIVES kind), COLORS, MATERIALS (the
# weight of the renderer's specular term). Heads world: HAIR_COLORS, SKIN_TONES.
_VOCABULARY = json.loads((Path(__file__).with_name("vocabulary.json")).read_text())
_RGB = tuple[float, float, float]
SHAPES: dict[str, str] = dict(_VOCABULARY["shapes"])
COLORS: dict[str, _RGB] = {word: tuple(rgb) for word, rgb in _VOCABULARY["colors"].items()}
MATERIALS: dict[str, float] = dict(_VOCABULARY["materials"])
HAIR_COLORS: dict[str, _RGB] = {word: tuple(rgb) for word, rgb in _VOCABULARY["hair_colors"].items()}
SKIN_TONES: dict[str, _RGB] = {word: tuple(rgb) for word, rgb in _VOCABULARY["skin_tones"].items()}

VIEW_WORDS: tuple[str, ...] = ("front view", "side view", "back view", "overhead view")
FRONT_MAX_YAW_DEG = 45.0
BACK_MIN_YAW_DEG = 135.0
OVERHEAD_MIN_PITCH_DEG = 60.0


def _view_word_deg(yaw_deg: float, pitch_deg: float) -> str:
    if pitch_deg >= OVERHEAD_MIN_PITCH_DEG:
        return "overhead view"
    yaw_deg = (yaw_deg + 180.0) % 360.0 - 180.0
    if yaw_deg == -180.0:
        yaw_deg = 180.0
    if abs(yaw_deg) <= FRONT_MAX_YAW_DEG:
        return "front view"
    if abs(yaw_deg) >= BACK_MIN_YAW_DEG:
        return "back view"
    return "side view"


def view_word(yaw: float | Tensor, pitch: float | Tensor) -> str | list[str]:
    """DreamFusion's view word for a camera at (yaw, pitch) in radians (thresholds in the module docstring).

    Floats give one word; tensors (broadcast together) give a list of words, one per element (flattened).
    """
    if isinstance(yaw, Tensor) or isinstance(pitch, Tensor):
        y, p = torch.broadcast_tensors(torch.as_tensor(yaw), torch.as_tensor(pitch))
        pairs = zip(y.flatten().tolist(), p.flatten().tolist(), strict=True)
        return [_view_word_deg(math.degrees(a), math.degrees(b)) for a, b in pairs]
    return _view_word_deg(math.degrees(yaw), math.degrees(pitch))


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def object_caption(shape: str, color: str, material: str | None = None, view: str | None = None) -> str:
    """ "a shiny red cube" (material optional); with a view word: "a shiny red cube, front view"."""
    for word, vocab, name in ((shape, SHAPES, "shape"), (color, COLORS, "colour")):
        if word not in vocab:
            raise ValueError(f"unknown {name} word {word!r}; expected one of {', '.join(vocab)}")
    if material is not None and material not in MATERIALS:
        raise ValueError(f"unknown material word {material!r}; expected one of {', '.join(MATERIALS)}")
    text = _with_article(" ".join(w for w in (material, color, shape) if w))
    return _add_view(text, view)


def head_caption(hair: str, skin: str, view: str | None = None) -> str:
    """ "a head with black hair and light skin" (with a view word: "..., side view")."""
    if hair not in HAIR_COLORS:
        raise ValueError(f"unknown hair colour {hair!r}; expected one of {', '.join(HAIR_COLORS)}")
    if skin not in SKIN_TONES:
        raise ValueError(f"unknown skin tone {skin!r}; expected one of {', '.join(SKIN_TONES)}")
    return _add_view(f"a head with {hair} hair and {skin} skin", view)


def shape_color_prompts() -> list[tuple[str, str, str]]:
    """(shape, colour, "a <colour> <shape>") for every pair of the objects world's vocabularies."""
    return [(s, c, object_caption(s, c)) for s in SHAPES for c in COLORS]


def head_prompts() -> list[tuple[str, str, str]]:
    """(hair, skin, "a head with <hair> hair and <skin> skin") for every pair of the heads world's vocabularies."""
    return [(h, k, head_caption(h, k)) for h in HAIR_COLORS for k in SKIN_TONES]


def _add_view(text: str, view: str | None) -> str:
    if view is None:
        return text
    if view not in VIEW_WORDS:
        raise ValueError(f"unknown view word {view!r}; expected one of {', '.join(VIEW_WORDS)}")
    return f"{text}, {view}"
