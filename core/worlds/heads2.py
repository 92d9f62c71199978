"""Heads v2 (`--world heads2`): a richer parametric head family, centred on the FFHQ camera pivot at every yaw.

The v1 world (heads.py, `--world heads`) stays as it is: the shipped model was trained and is accepted on it.

World frame as EG3D's FFHQ heads: +y up, the face looks towards +z. Each head is built in a local frame around its
skull centre, then scaled by HEAD_SCALE and translated so that the volume centroid of the head above the chin lies on
the camera pivot FFHQ_PIVOT = (0, 0, 0.2) in x and z (and at y = CENTRE_Y): every FFHQ camera looks at that point, so
the silhouette stays centred at every yaw (v1's heads sit ~0.2 behind the pivot and slide sideways as the camera
orbits). The neck is added afterwards in world units and ends at y = -0.48; everything stays inside [-0.5, 0.5]^3.

Identity = the continuous parameters IDENTITY_PARAMS (each in its range, all drawn uniformly per seed), the hair style
(HAIR_STYLES), glasses or not, and the skin / hair colour words. Parts, in union order (fixed count, so any heads can
be batched; absent parts are parked far outside the box with a tiny size):

    skull, jaw, chin (smooth), ears x2 (smooth), nose bridge + nose tip (smooth), lips (smooth, lip colour),
    mouth slit (dark, hard), eyes x2 (hard), brows x2 (hair colour, tilted), hair cap (clipped ellipsoid),
    hair extra (long: a clipped ellipsoid down the back; bun: a sphere at the back; none: parked),
    glasses: two rims (tori facing +z) + a bridge (capsule along x) (parked without glasses),
    neck (smooth; added in world units)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..cameras import FFHQ_PIVOT
from .captions import HAIR_COLORS, SKIN_TONES, head_caption
from .scenes import Scene, rotation_matrix, shape, stack, union

__all__ = [
    "IDENTITY_PARAMS",
    "HAIR_STYLES",
    "HEAD_SCALE",
    "CENTRE_Y",
    "Identity",
    "Head2Batch",
    "head2_identity",
    "head2_scene",
    "build_head2",
    "PART_NAMES",
    "part_centre",
    "sample_heads2",
    "identity_vector",
]

HEAD_SCALE = 0.85
CENTRE_Y = 0.0
HAIR_STYLES = ("bald", "short", "medium", "long", "bun")
_HEAD_STREAM = 0x4EAD2
_PARK = (0.0, -40.0, 0.0)  # where absent parts wait (far outside the box: never the closest part inside it)

# name: (low, high), local units before HEAD_SCALE. Uniform per seed.
IDENTITY_PARAMS: dict[str, tuple[float, float]] = {
    "skull_rx": (0.185, 0.235),
    "skull_ry": (0.235, 0.285),
    "skull_rz": (0.225, 0.27),
    "jaw_width": (0.62, 0.92),  # jaw rx / skull rx
    "jaw_drop": (0.14, 0.20),  # skull centre -> jaw centre, down
    "jaw_forward": (0.05, 0.10),
    "jaw_ry": (0.10, 0.15),
    "chin": (0.0, 1.0),  # chin prominence
    "ear_size": (0.04, 0.066),
    "ear_out": (0.0, 0.025),  # ear protrusion beyond the skull
    "nose_length": (0.04, 0.075),
    "nose_width": (0.018, 0.036),
    "nose_projection": (0.025, 0.06),
    "nose_tip": (0.014, 0.026),
    "mouth_width": (0.035, 0.062),
    "lip_thickness": (0.008, 0.017),
    "mouth_y": (0.13, 0.17),  # below the skull centre
    "eye_radius": (0.02, 0.028),
    "eye_spacing": (0.06, 0.085),
    "eye_height": (0.01, 0.04),  # below the skull centre
    "brow_thickness": (0.006, 0.013),
    "brow_tilt_deg": (-18.0, 18.0),
    "brow_raise": (0.025, 0.045),
    "hair_volume": (0.012, 0.045),
    "hairline": (-0.03, 0.08),
    "neck_radius": (0.075, 0.105),
}

# union order of build_head2's parts (absent ones parked at _PARK)
PART_NAMES = (
    "skull", "jaw", "chin", "neck", "ear_l", "ear_r", "nose_bridge", "nose_tip", "lips", "mouth", "eye_l", "eye_r",
    "brow_l", "brow_r", "hair_cap", "hair_extra", "rim_l", "rim_r", "glasses_bridge",
)  # fmt: skip


def part_centre(scene: Scene, name: str, b: int = 0) -> torch.Tensor:
    """World position (3,) of part `name`'s local origin in head b of a v2 Scene (its centre for every primitive)."""
    return scene.parts[PART_NAMES.index(name)].translation[b].clone()


_EYE = (0.10, 0.08, 0.07)
_MOUTH = (0.25, 0.08, 0.08)
_FRAME = (0.08, 0.08, 0.1)


@dataclass
class Identity:
    """Everything that makes a v2 head: continuous parameters plus categorical choices (JSON-ready via to_json)."""

    params: dict[str, float]  # IDENTITY_PARAMS names -> value
    hair_style: str  # HAIR_STYLES
    glasses: bool
    hair: str  # HAIR_COLORS word
    skin: str  # SKIN_TONES word

    def to_json(self) -> dict:
        return {
            "version": 2,
            "params": {k: round(v, 6) for k, v in self.params.items()},
            "hair_style": self.hair_style,
            "glasses": self.glasses,
            "hair": self.hair,
            "skin": self.skin,
        }


def identity_vector(identity: Identity | dict) -> torch.Tensor:
    """(len(IDENTITY_PARAMS) + len(HAIR_STYLES) + 1,) float32: continuous parameters normalised to [0, 1] in
    IDENTITY_PARAMS order, the hair style one-hot, glasses 0/1 (colour words are left out: shape only)."""
    d = identity.to_json() if isinstance(identity, Identity) else identity
    cont = [(d["params"][k] - lo) / (hi - lo) for k, (lo, hi) in IDENTITY_PARAMS.items()]
    style = [float(d["hair_style"] == s) for s in HAIR_STYLES]
    return torch.tensor(cont + style + [float(d["glasses"])], dtype=torch.float32)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 2654435761 + _HEAD_STREAM) % (2**63))


def _jitter(color, amount: float, g: torch.Generator) -> tuple[float, float, float]:
    c = torch.tensor(color) + amount * (2 * torch.rand(3, generator=g) - 1)
    return tuple(c.clamp(0, 1).tolist())


def head2_identity(seed: int) -> tuple[Identity, dict]:
    """The identity of `seed` and its jittered colours {skin, hair, lips} (RGB). Same seed, same head."""
    g = _generator(seed)
    params = {}
    for name, (lo, hi) in IDENTITY_PARAMS.items():
        params[name] = lo + (hi - lo) * torch.rand((), generator=g).item()
    hair_style = HAIR_STYLES[int(torch.randint(len(HAIR_STYLES), (), generator=g))]
    glasses = bool(torch.rand((), generator=g).item() < 0.3)
    hair_word = list(HAIR_COLORS)[int(torch.randint(len(HAIR_COLORS), (), generator=g))]
    skin_word = list(SKIN_TONES)[int(torch.randint(len(SKIN_TONES), (), generator=g))]
    skin = _jitter(SKIN_TONES[skin_word], 0.04, g)
    hair = _jitter(HAIR_COLORS[hair_word], 0.04, g)
    lips = tuple((torch.tensor(skin) * torch.tensor([0.78, 0.42, 0.45])).tolist())
    return Identity(params, hair_style, glasses, hair_word, skin_word), {"skin": skin, "hair": hair, "lips": lips}


def _parked(part: Scene, rotation: torch.Tensor | None = None) -> Scene:
    """`part` (rotated if asked) moved to _PARK: present in the part list, never seen."""
    return (part if rotation is None else part._transformed(rotation=rotation)).translate(_PARK)


def _local_parts(idt: Identity, colors: dict) -> list[Scene]:
    """The head above the neck, in the local frame (skull centre at the origin, unscaled)."""
    p = idt.params
    skin, hair, lips = colors["skin"], colors["hair"], colors["lips"]
    rx, ry, rz = p["skull_rx"], p["skull_ry"], p["skull_rz"]

    def face_z(x: float, y: float) -> float:
        """z of the skull's front surface at (x, y)."""
        q = 1 - (x / rx) ** 2 - (y / ry) ** 2
        return rz * math.sqrt(max(q, 0.0))

    skull = shape("ellipsoid", color=skin, rx=rx, ry=ry, rz=rz)
    jy, jz = -p["jaw_drop"], p["jaw_forward"]
    jrz = rz * 0.68
    jaw = shape("ellipsoid", color=skin, blend=0.06, rx=rx * p["jaw_width"], ry=p["jaw_ry"], rz=jrz).translate(
        (0, jy, jz)
    )
    chin_r = 0.03 + 0.02 * p["chin"]
    chin = shape("sphere", color=skin, blend=0.03, radius=chin_r).translate(
        (0, jy - p["jaw_ry"] * 0.55, jz + jrz - chin_r * (1.1 - 0.5 * p["chin"]))
    )
    ear_y = -0.05
    ears = [
        shape("ellipsoid", color=skin, blend=0.012, rx=0.02, ry=p["ear_size"], rz=0.03).translate(
            (side * (rx - 0.01 + p["ear_out"]), ear_y, -0.01)
        )
        for side in (-1.0, 1.0)
    ]
    # nose: a bridge ellipsoid down the midline and a tip sphere at its lower front
    nose_len, nose_y = p["nose_length"], -0.055
    bridge = shape(
        "ellipsoid", color=skin, blend=0.02, rx=p["nose_width"], ry=nose_len, rz=p["nose_projection"]
    ).translate((0, nose_y, face_z(0.0, nose_y) - 0.35 * p["nose_projection"]))
    tip_y = nose_y - 0.6 * nose_len
    tip = shape("sphere", color=skin, blend=0.015, radius=p["nose_tip"]).translate(
        (0, tip_y, face_z(0.0, nose_y) + 0.55 * p["nose_projection"] - 0.2 * p["nose_tip"])
    )
    # mouth: lips (smoothly joined, lip colour) with a dark slit on their front
    my = -p["mouth_y"]
    mouth_front = max(face_z(0.0, my), jz + jrz * math.sqrt(max(1 - ((my - jy) / p["jaw_ry"]) ** 2, 0.0)))
    lip = shape("ellipsoid", color=lips, blend=0.006, rx=p["mouth_width"], ry=p["lip_thickness"], rz=0.024).translate(
        (0, my, mouth_front - 0.01)
    )
    slit = shape("ellipsoid", color=_MOUTH, rx=p["mouth_width"] * 0.9, ry=0.0045, rz=0.012).translate(
        (0, my, mouth_front + 0.004)
    )
    # eyes
    er, ex, ey = p["eye_radius"], p["eye_spacing"], -p["eye_height"]
    ez = face_z(ex, ey) - er * 0.55
    eyes = [shape("sphere", color=_EYE, shininess=0.6, radius=er).translate((s * ex, ey, ez)) for s in (-1.0, 1.0)]
    # brows: thin hair-coloured ellipsoids over the eyes, tilted about z (outer end up for a positive tilt)
    by = ey + er + p["brow_raise"]
    brows = []
    for s in (-1.0, 1.0):
        b = shape("ellipsoid", color=hair, rx=0.032, ry=p["brow_thickness"], rz=0.012)
        b = b._transformed(rotation=rotation_matrix("z", s * math.radians(p["brow_tilt_deg"])))
        brows.append(b.translate((s * ex, by, face_z(ex, by) - 0.002)))
    # hair cap: a larger ellipsoid, front-lower part cut by the hairline plane
    vol = p["hair_volume"]
    style = idt.hair_style
    if style == "bald":
        vol = -0.03  # inside the skull: never seen
    elif style == "short":
        vol = min(vol, 0.02)
    n = torch.nn.functional.normalize(torch.tensor([0.0, -0.45, 1.0]), dim=0).tolist()
    cap = shape(
        "ellipsoid",
        color=hair,
        clip=(n[0], n[1], n[2], p["hairline"]),
        rx=rx + vol,
        ry=ry + vol + 0.01,
        rz=rz + vol,
    ).translate((0, 0.01, -0.01))
    if style == "long":  # a sheet down the back of the head to the shoulders, kept behind the ears
        extra = shape(
            "ellipsoid", color=hair, clip=(0.0, 0.35, 1.0, -0.03), rx=rx + vol, ry=ry + 0.1, rz=rz * 0.9 + vol
        ).translate((0, -0.1, -0.03))
    elif style == "bun":
        extra = shape("sphere", color=hair, radius=0.07).translate((0, 0.12, -rz - vol - 0.02))
    else:
        extra = _parked(shape("sphere", color=hair, radius=0.01))
    # glasses: rims facing +z (torus axis y rotated onto z) + a bridge along x
    if idt.glasses:
        gr = er * 1.9
        gz = face_z(ex, ey) + 0.025
        rims = [
            shape("torus", color=_FRAME, shininess=0.3, major=gr, minor=0.0045)
            ._transformed(rotation=rotation_matrix("x", math.pi / 2))
            .translate((s * ex, ey, gz))
            for s in (-1.0, 1.0)
        ]
        bridge_g = (
            shape("capsule", color=_FRAME, shininess=0.3, radius=0.004, half_height=max(ex - gr, 0.005))
            ._transformed(rotation=rotation_matrix("z", math.pi / 2))
            .translate((0, ey + 0.01, gz))
        )
    else:
        rims = [
            _parked(shape("torus", color=_FRAME, major=0.01, minor=0.002), rotation_matrix("x", math.pi / 2))
            for _ in range(2)
        ]
        bridge_g = _parked(
            shape("capsule", color=_FRAME, radius=0.002, half_height=0.005), rotation_matrix("z", math.pi / 2)
        )
    return [skull, jaw, chin, *ears, bridge, tip, lip, slit, *eyes, *brows, cap, extra, *rims, bridge_g]


def _centroid(scene: Scene, lo: float, n: int = 28) -> torch.Tensor:
    """Volume centroid of a single scene's interior on an n^3 grid over [-0.45, 0.45]^3 with y >= lo (local)."""
    g = torch.linspace(-0.45, 0.45, n)
    pts = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    pts = pts[pts[:, 1] >= lo]
    inside = scene.distance(pts) < 0
    return pts[inside].mean(0)


def head2_scene(seed: int) -> tuple[Scene, Identity]:
    """The v2 head of `seed` in the world frame (single-scene Scene) and its identity."""
    idt, colors = head2_identity(seed)
    return build_head2(idt, colors), idt


def build_head2(idt: Identity, colors: dict) -> Scene:
    """The v2 head of an identity (single-scene Scene, world frame, parts in PART_NAMES order)."""
    parts = _local_parts(idt, colors)
    p = idt.params
    chin_y = -p["jaw_drop"] - p["jaw_ry"]
    c = _centroid(union(*[s for s in parts if s.parts[0].translation[0].norm() < 10]), chin_y)
    target = torch.tensor([FFHQ_PIVOT[0], CENTRE_Y, FFHQ_PIVOT[2]])
    shift = (target - HEAD_SCALE * c).tolist()
    world = [s._transformed(scale=HEAD_SCALE, translation=shift) for s in parts]
    # neck, in world units: from inside the jaw down to y = -0.48
    top = shift[1] + HEAD_SCALE * (-p["jaw_drop"])
    half = (top + 0.48) / 2
    neck = shape("cylinder", color=colors["skin"], blend=0.035, radius=HEAD_SCALE * p["neck_radius"], half_height=half)
    neck = neck.translate((0.0, top - half, shift[2] + HEAD_SCALE * (p["jaw_forward"] - 0.06)))
    return union(*world[:3], neck, *world[3:])


@dataclass
class Head2Batch:
    scene: Scene  # B heads, world frame as above
    seeds: list[int]
    identities: list[Identity]

    @property
    def hair(self) -> list[str]:
        return [i.hair for i in self.identities]

    @property
    def skin(self) -> list[str]:
        return [i.skin for i in self.identities]

    def captions(self, views: Sequence[str] | None = None) -> list[str]:
        views = views or [None] * len(self.seeds)
        return [head_caption(h, s, v) for h, s, v in zip(self.hair, self.skin, views, strict=True)]


def sample_heads2(seeds: Sequence[int] | int, start: int = 0) -> Head2Batch:
    """v2 heads for the given seeds (or seeds start .. start+n-1 for an int n), as one batched Scene."""
    seeds = list(range(start, start + seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    made = [head2_scene(s) for s in seeds]
    return Head2Batch(scene=stack([m[0] for m in made]), seeds=seeds, identities=[m[1] for m in made])
