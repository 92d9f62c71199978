"""A parametric head family standing in for FFHQ: deterministic per seed, varied proportions and colours.

World frame as EG3D's FFHQ heads: +y up, the face looks towards +z (seen by the frontal camera at +z), the whole
head inside [-0.5, 0.5]^3 (box_warp = 1). Parts, in union order (blend = smooth-union radius with what precedes):

    skull   ellipsoid around (0, ~0.05, ~-0.02), semi-axes ~(0.21, 0.26, 0.25)
    jaw     ellipsoid below-front of the skull                       blend ~0.06
    neck    cylinder under the jaw, down to y ~ -0.47                blend ~0.04
    ears    two ellipsoids on the skull's sides                       blend 0.015
    nose    ellipsoid on the face's midline, pointing +z             blend 0.02
    eyes    two dark spheres set into the face                       hard union
    hair    ellipsoid cap a little larger than the skull, with its front-lower part cut away by a plane
            (the hairline), hair colour                                hard union

Nine parts, all cheap primitives: one SDF evaluation is ~9 primitive evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .captions import HAIR_COLORS, SKIN_TONES, head_caption
from .scenes import Scene, shape, stack, union

__all__ = ["HeadBatch", "head_scene", "sample_heads"]

_EYE_COLOR = (0.10, 0.08, 0.07)
_HEAD_STREAM = 0x4EAD


@dataclass
class HeadBatch:
    scene: Scene  # B heads, world frame as above
    seeds: list[int]
    hair: list[str]  # HAIR_COLORS words
    skin: list[str]  # SKIN_TONES words

    def captions(self, views: Sequence[str] | None = None) -> list[str]:
        views = views or [None] * len(self.seeds)
        return [head_caption(h, s, v) for h, s, v in zip(self.hair, self.skin, views, strict=True)]


def _jitter(color, amount: float, g: torch.Generator) -> tuple[float, float, float]:
    c = torch.tensor(color) + amount * (2 * torch.rand(3, generator=g) - 1)
    return tuple(c.clamp(0, 1).tolist())


def head_scene(seed: int) -> tuple[Scene, str, str]:
    """The head of `seed`: (single-scene Scene, hair word, skin word). Same seed, same head."""
    g = torch.Generator().manual_seed((int(seed) * 2654435761 + _HEAD_STREAM) % (2**63))

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=g).item()

    hair_word = list(HAIR_COLORS)[int(torch.randint(len(HAIR_COLORS), (), generator=g))]
    skin_word = list(SKIN_TONES)[int(torch.randint(len(SKIN_TONES), (), generator=g))]
    skin = _jitter(SKIN_TONES[skin_word], 0.04, g)
    hair = _jitter(HAIR_COLORS[hair_word], 0.04, g)

    # skull
    rx, ry, rz = u(0.19, 0.23), u(0.24, 0.28), u(0.23, 0.27)
    cy, cz = u(0.03, 0.07), u(-0.04, 0.0)
    skull = shape("ellipsoid", color=skin, rx=rx, ry=ry, rz=rz).translate((0, cy, cz))
    # jaw: lower face, forward
    jy, jz = cy - u(0.15, 0.2), cz + u(0.06, 0.1)
    jaw = shape(
        "ellipsoid", color=skin, blend=u(0.05, 0.07), rx=rx * u(0.7, 0.85), ry=u(0.12, 0.15), rz=rz * u(0.62, 0.72)
    ).translate((0, jy, jz))
    # neck
    neck_r, neck_top = u(0.085, 0.11), jy - 0.02
    neck_h = (neck_top + 0.47) / 2
    neck = shape("cylinder", color=skin, blend=u(0.03, 0.05), radius=neck_r, half_height=neck_h).translate(
        (0, neck_top - neck_h, cz - 0.02)
    )
    # ears on the skull sides
    ear_y = cy - u(0.04, 0.07)
    ears = [
        shape("ellipsoid", color=skin, blend=0.015, rx=0.022, ry=u(0.045, 0.06), rz=0.032).translate(
            (side * (rx - 0.004), ear_y, cz - 0.01)
        )
        for side in (-1.0, 1.0)
    ]

    def face_z(x: float, y: float) -> float:
        """z of the skull's front surface at (x, y)."""
        q = 1 - (x / rx) ** 2 - ((y - cy) / ry) ** 2
        return cz + rz * math.sqrt(max(q, 0.0))

    # nose on the midline, tip towards +z
    nose_y = cy - u(0.08, 0.11)
    nose_ry, nose_rz = u(0.045, 0.065), u(0.035, 0.05)
    nose = shape("ellipsoid", color=skin, blend=0.02, rx=u(0.022, 0.032), ry=nose_ry, rz=nose_rz).translate(
        (0, nose_y, face_z(0.0, nose_y) - 0.2 * nose_rz)
    )
    # eyes: dark spheres protruding a little from the face
    eye_r, eye_x, eye_y = u(0.022, 0.03), u(0.065, 0.085), cy - u(0.01, 0.035)
    eye_z = face_z(eye_x, eye_y) - eye_r * 0.55
    eyes = [
        shape("sphere", color=_jitter(_EYE_COLOR, 0.03, g), shininess=0.6, radius=eye_r).translate(
            (side * eye_x, eye_y, eye_z)
        )
        for side in (-1.0, 1.0)
    ]
    # hair: a cap over the skull, cut by the hairline plane n . p <= offset (n towards front-down, local frame)
    n = torch.nn.functional.normalize(torch.tensor([0.0, -u(0.3, 0.6), 1.0]), dim=0).tolist()
    volume = u(0.012, 0.04)
    hair_cap = shape(
        "ellipsoid",
        color=hair,
        clip=(n[0], n[1], n[2], u(-0.02, 0.07)),
        rx=rx + volume,
        ry=ry + volume + u(0.0, 0.02),
        rz=rz + volume,
    ).translate((0, cy + u(0.0, 0.02), cz - u(0.0, 0.02)))
    scene = union(skull, jaw, neck, *ears, nose, *eyes, hair_cap)
    return scene, hair_word, skin_word


def sample_heads(seeds: Sequence[int] | int, start: int = 0) -> HeadBatch:
    """Heads for the given seeds (or for seeds start .. start+n-1 when an int n is given), as one batched Scene."""
    seeds = list(range(start, start + seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    made = [head_scene(s) for s in seeds]
    return HeadBatch(
        scene=stack([m[0] for m in made]), seeds=seeds, hair=[m[1] for m in made], skin=[m[2] for m in made]
    )
