"""The objects world: one primitive shape x colour x material word, centred at the origin inside [-0.5, 0.5]^3.

Sizes keep every shape within a bounding radius of ~0.45 around the origin. Orientation is canonical (axis of
revolution +y, cone apex up) so that view words mean the same thing for every object; the torus is tilted by 70 deg
about x so its hole faces the front (+z) camera. The material word sets the renderer's specular weight
(captions.MATERIALS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .captions import COLORS, MATERIALS, SHAPES, object_caption
from .scenes import Scene, shape, stack

__all__ = ["ObjectBatch", "check_object_words", "object_scene", "sample_objects"]

_OBJECT_STREAM = 0x0B1E


@dataclass
class ObjectBatch:
    scene: Scene  # B single-part scenes
    seeds: list[int]
    shape: list[str]  # SHAPES words
    color: list[str]  # COLORS words
    material: list[str]  # MATERIALS words

    def captions(self, views: Sequence[str] | None = None, with_material: bool = True) -> list[str]:
        views = views or [None] * len(self.seeds)
        return [
            object_caption(s, c, m if with_material else None, v)
            for s, c, m, v in zip(self.shape, self.color, self.material, views, strict=True)
        ]


def check_object_words(shape_word: str, color_word: str, material_word: str) -> None:
    """ValueError naming the first word that is not in the world's vocabulary (captions.SHAPES, COLORS, MATERIALS)."""
    for kind, word, words in (
        ("shape", shape_word, SHAPES),
        ("colour", color_word, COLORS),
        ("material", material_word, MATERIALS),
    ):
        if word not in words:
            raise ValueError(f"unknown {kind} word {word!r}; expected one of {', '.join(words)}")


def object_scene(shape_word: str, color_word: str, material_word: str, g: torch.Generator | None = None) -> Scene:
    """One object (sizes drawn from `g`, or the middle of their ranges without one)."""

    def u(lo: float, hi: float) -> float:
        x = 0.5 if g is None else torch.rand((), generator=g).item()
        return lo + (hi - lo) * x

    check_object_words(shape_word, color_word, material_word)
    kw = dict(color=COLORS[color_word], shininess=MATERIALS[material_word])
    if shape_word == "sphere":
        return shape("sphere", radius=u(0.28, 0.36), **kw)
    if shape_word == "cube":
        a = u(0.2, 0.25)
        return shape("box", hx=a, hy=a, hz=a, **kw)
    if shape_word == "rounded cube":
        a = u(0.2, 0.25)
        return shape("rounded_box", hx=a, hy=a, hz=a, rounding=u(0.04, 0.08), **kw)
    if shape_word == "torus":
        return shape("torus", major=u(0.22, 0.27), minor=u(0.08, 0.11), **kw).rotate("x", 70.0)
    if shape_word == "cylinder":
        return shape("cylinder", radius=u(0.2, 0.26), half_height=u(0.2, 0.3), **kw)
    if shape_word == "cone":
        return shape("cone", radius=u(0.24, 0.3), half_height=u(0.25, 0.32), **kw)
    return shape("capsule", radius=u(0.14, 0.18), half_height=u(0.14, 0.2), **kw)


def sample_objects(seeds: Sequence[int] | int, start: int = 0) -> ObjectBatch:
    """Objects for the given seeds (or seeds start .. start+n-1 for an int n): shape, colour, material uniform."""
    seeds = list(range(start, start + seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    scenes, shapes, colors, materials = [], [], [], []
    for s in seeds:
        g = torch.Generator().manual_seed((s * 2654435761 + _OBJECT_STREAM) % (2**63))
        pick = [int(torch.randint(len(v), (), generator=g)) for v in (SHAPES, COLORS, MATERIALS)]
        sw, cw, mw = list(SHAPES)[pick[0]], list(COLORS)[pick[1]], list(MATERIALS)[pick[2]]
        scenes.append(object_scene(sw, cw, mw, g))
        shapes.append(sw)
        colors.append(cw)
        materials.append(mw)
    return ObjectBatch(stack(scenes), seeds, shapes, colors, materials)
