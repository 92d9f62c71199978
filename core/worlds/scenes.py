"""Composed SDF scenes: coloured primitives, rigid transforms + uniform scale, (smooth) unions, batches of scenes.

A `Scene` holds a *batch* of B scenes that share a part list (B = 1 for a single scene). Part j of scene b is a
primitive of kind `kind[b]` with its size parameters, colour, shininess and transform. The world point of a local
point p_l is p_w = R (s p_l) + t. Parts are joined left to right with a smooth union of radius `blend[b]` (0: plain
union, colours do not mix). Optionally a part is clipped by the local half-space n . p_l <= offset.

Evaluation takes a flat set of world points `(k, 3)` and, for each point, the index of the scene it belongs to
`(k,)`: the sphere tracer keeps only its active rays, which may come from any scene of the batch.

Build single scenes with `shape(...)`, `.translate/.rotate/.scaled`, `union(...)`; batch them with `stack(...)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import sdf

__all__ = ["PRIMITIVES", "PRIMITIVE_PARAMS", "Part", "Scene", "shape", "union", "stack", "rotation_matrix"]

# Primitive kinds and the meaning of their 4 size parameters (unused ones are 0). Axis of revolution: +y.
PRIMITIVE_PARAMS: dict[str, tuple[str, ...]] = {
    "sphere": ("radius",),
    "box": ("hx", "hy", "hz"),
    "rounded_box": ("hx", "hy", "hz", "rounding"),
    "torus": ("major", "minor"),
    "cylinder": ("radius", "half_height"),
    "cone": ("radius", "half_height"),
    "capsule": ("radius", "half_height"),
    "ellipsoid": ("rx", "ry", "rz"),  # the 4th parameter is set to min(rx, ry, rz) (the distance bound's scale)
}
PRIMITIVES: tuple[str, ...] = tuple(PRIMITIVE_PARAMS)
_KIND = {name: i for i, name in enumerate(PRIMITIVES)}


def _primitive(kind: int, p: Float[Tensor, "k 3"], q: Float[Tensor, "k 4"]) -> Float[Tensor, " k"]:
    name = PRIMITIVES[kind]
    if name == "sphere":
        return sdf.sphere(p, q[:, 0])
    if name == "box":
        return sdf.box(p, q[:, :3])
    if name == "rounded_box":
        return sdf.rounded_box(p, q[:, :3], q[:, 3])
    if name == "torus":
        return sdf.torus(p, q[:, 0], q[:, 1])
    if name == "cylinder":
        return sdf.cylinder(p, q[:, 0], q[:, 1])
    if name == "cone":
        return sdf.cone(p, q[:, 0], q[:, 1])
    if name == "capsule":
        return sdf.capsule(p, q[:, 0], q[:, 1])
    return ((p / q[:, :3]).norm(dim=-1) - 1) * q[:, 3]  # = sdf.ellipsoid; q[:, 3] holds min(radii)


def rotation_matrix(axis: str | tuple, angle: float) -> Float[Tensor, "3 3"]:
    """Right-handed rotation by `angle` radians about `axis` ('x', 'y', 'z' or a 3-vector)."""
    if isinstance(axis, str):
        axis = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}[axis]
    a = torch.nn.functional.normalize(torch.tensor(axis, dtype=torch.float32), dim=0)
    x, y, z = a.tolist()
    c, s = math.cos(angle), math.sin(angle)
    cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return c * torch.eye(3) + s * cross + (1 - c) * torch.outer(a, a)


@dataclass
class Part:
    """One primitive per scene of a batch of B scenes. World frame: +y up, the face/front of a scene towards +z."""

    kind: Int[Tensor, " b"]  # index into PRIMITIVES
    params: Float[Tensor, "b 4"]  # size parameters, see PRIMITIVE_PARAMS
    color: Float[Tensor, "b 3"]  # albedo, RGB in [0, 1]
    shininess: Float[Tensor, " b"]  # specular weight in [0, 1] (0 = matte)
    translation: Float[Tensor, "b 3"]  # local origin in world coordinates
    rotation: Float[Tensor, "b 3 3"]  # local -> world rotation
    scale: Float[Tensor, " b"]  # uniform scale, local -> world
    blend: Float[Tensor, " b"]  # smooth-union radius with the parts before it (0 = plain union)
    clip: Float[Tensor, "b 4"]  # local half-space kept: n . p_l <= offset, as (nx, ny, nz, offset); n = 0: no clip
    kinds: tuple[int, ...] = field(init=False)  # kinds present in the batch (python ints: no sync while marching)
    smooth: bool = field(init=False)
    rotated: bool = field(init=False)
    scaled: bool = field(init=False)
    clipped: bool = field(init=False)

    def __post_init__(self):
        self.kinds = tuple(sorted(set(self.kind.tolist())))
        self.smooth = bool((self.blend > 0).any())
        self.rotated = not torch.equal(self.rotation, torch.eye(3).expand_as(self.rotation))
        self.scaled = not bool((self.scale == 1).all())
        self.clipped = bool((self.clip[:, :3] != 0).any())

    def __len__(self) -> int:
        return self.kind.shape[0]

    def select(self, idx: Int[Tensor, " m"]) -> "Part":
        return Part(*(getattr(self, n)[idx] for n in _FIELDS))

    def transformed(self, rotation: Float[Tensor, "3 3"], scale: float, translation) -> "Part":
        """Apply p -> R (s p) + t after the part's own transform."""
        t = torch.as_tensor(translation, dtype=torch.float32)
        return replace(
            self,
            rotation=rotation @ self.rotation,
            scale=self.scale * scale,
            translation=scale * self.translation @ rotation.T + t,
        )

    def local_distance(
        self,
        p: Float[Tensor, "k 3"],
        idx: Int[Tensor, " k"],
        translation: Float[Tensor, "k 3"] | None = None,
        params: Float[Tensor, "k 4"] | None = None,
    ) -> Float[Tensor, " k"]:
        """Signed distance (world units) of the world points `p`, point i evaluated in scene idx[i].

        `translation` / `params`: this part's rows already gathered for the points (Scene packs them in one gather).
        """
        p = p - (_gather(self.translation, idx) if translation is None else translation)
        if self.rotated:
            p = torch.einsum("kji,kj->ki", _gather(self.rotation, idx), p)  # R^T p
        if self.scaled:
            s = _gather(self.scale, idx)
            p = p / s[:, None]
        params = _gather(self.params, idx) if params is None else params
        if len(self.kinds) == 1:
            d = _primitive(self.kinds[0], p, params)
        else:
            d = p.new_empty(p.shape[0])
            kind = self.kind.index_select(0, idx)
            for k in self.kinds:
                sel = (kind == k).nonzero().squeeze(1)
                d.index_copy_(0, sel, _primitive(k, p.index_select(0, sel), params.index_select(0, sel)))
        if self.clipped:
            plane = _gather(self.clip, idx)
            d = torch.where(
                plane[:, :3].abs().sum(-1) > 0, torch.maximum(d, (p * plane[:, :3]).sum(-1) - plane[:, 3]), d
            )
        if self.scaled:
            d = d * s
        return d


def _gather(x: Tensor, idx: Int[Tensor, " k"]) -> Tensor:
    """Per-point rows of a per-scene tensor (B = 1: a broadcastable view, no copy)."""
    return x if x.shape[0] == 1 else x.index_select(0, idx)


_FIELDS = ("kind", "params", "color", "shininess", "translation", "rotation", "scale", "blend", "clip")


@dataclass
class Scene:
    """A batch of B scenes sharing a part list; parts joined left to right by (smooth) union."""

    parts: list[Part]
    _packed: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not self.parts:
            raise ValueError("Scene needs at least one part")
        sizes = {len(p) for p in self.parts}
        if len(sizes) != 1:
            raise ValueError(f"Scene parts disagree on the batch size: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.parts[0])

    def __getitem__(self, idx) -> "Scene":
        if isinstance(idx, int):
            idx = [idx]
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        return Scene([p.select(idx) for p in self.parts])

    # ------------------------------------------------------------------ evaluation
    def _idx(self, points: Tensor, idx: Tensor | None) -> Tensor:
        if idx is None:
            if len(self) != 1:
                raise ValueError(f"a batch of {len(self)} scenes needs the scene index of every point")
            idx = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
        return idx

    def _rows(self, idx: Int[Tensor, " k"]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per part, (translation (k,3), params (k,4), blend (k,)) for the points' scenes: one gather for all parts."""
        if self._packed is None:
            self._packed = torch.cat([torch.cat([p.translation, p.params, p.blend[:, None]], 1) for p in self.parts], 1)
        rows = _gather(self._packed, idx)
        return [
            (rows[:, 8 * j : 8 * j + 3], rows[:, 8 * j + 3 : 8 * j + 7], rows[:, 8 * j + 7])
            for j in range(len(self.parts))
        ]

    def distance(self, points: Float[Tensor, "k 3"], idx: Int[Tensor, " k"] | None = None) -> Float[Tensor, " k"]:
        """Signed distance at world points (point i in scene idx[i]; idx may be None for a single scene)."""
        idx = self._idx(points, idx)
        d = None
        for part, (trans, params, blend) in zip(self.parts, self._rows(idx), strict=True):
            dj = part.local_distance(points, idx, trans, params)
            if d is None:
                d = dj
            elif part.smooth:
                d, _ = sdf.smooth_union(dj, d, blend)
            else:
                d = torch.minimum(dj, d)
        return d

    def surface(
        self, points: Float[Tensor, "k 3"], idx: Int[Tensor, " k"] | None = None
    ) -> tuple[Float[Tensor, " k"], Float[Tensor, "k 3"], Float[Tensor, " k"]]:
        """(distance, albedo RGB in [0, 1], shininess) at world points; colours blend where parts smoothly join."""
        idx = self._idx(points, idx)
        d = color = shine = None
        for part, (trans, params, blend) in zip(self.parts, self._rows(idx), strict=True):
            dj = part.local_distance(points, idx, trans, params)
            cj, sj = part.color.index_select(0, idx), part.shininess.index_select(0, idx)
            if d is None:
                d, color, shine = dj, cj, sj
                continue
            d, w = sdf.smooth_union(dj, d, blend)
            color = torch.lerp(color, cj, w[:, None])
            shine = torch.lerp(shine, sj, w)
        return d, color, shine

    def __call__(self, points: Float[Tensor, "... 3"]) -> Float[Tensor, "..."]:
        """Signed distance of a single scene (B = 1) at points of any leading shape."""
        flat = points.reshape(-1, 3)
        return self.distance(flat).reshape(points.shape[:-1])

    def albedo(self, points: Float[Tensor, "... 3"]) -> Float[Tensor, "... 3"]:
        """Albedo of a single scene (B = 1) at points of any leading shape."""
        _, color, _ = self.surface(points.reshape(-1, 3))
        return color.reshape(*points.shape[:-1], 3)

    # ------------------------------------------------------------------ transforms (applied to every part)
    def _transformed(self, rotation=None, scale=1.0, translation=(0.0, 0.0, 0.0)) -> "Scene":
        r = torch.eye(3) if rotation is None else torch.as_tensor(rotation, dtype=torch.float32)
        return Scene([p.transformed(r, float(scale), translation) for p in self.parts])

    def translate(self, xyz) -> "Scene":
        return self._transformed(translation=xyz)

    def rotate(self, axis: str | tuple, degrees: float) -> "Scene":
        """Rotate about a world axis through the origin ('x', 'y', 'z' or a vector), right-handed, degrees."""
        return self._transformed(rotation=rotation_matrix(axis, math.radians(degrees)))

    def scaled(self, factor: float) -> "Scene":
        return self._transformed(scale=factor)


def shape(
    kind: str,
    color=(0.7, 0.7, 0.7),
    shininess: float = 0.0,
    blend: float = 0.0,
    clip: tuple[float, float, float, float] | None = None,
    **size: float,
) -> Scene:
    """A single-scene, single-part Scene, e.g. shape("torus", color=(1, 0, 0), major=0.3, minor=0.1).

    Size keywords are the names in PRIMITIVE_PARAMS[kind]; `blend` is the smooth-union radius used when this part
    joins the parts before it in `union`.
    """
    if kind not in _KIND:
        raise ValueError(f"unknown primitive {kind!r}; expected one of {', '.join(PRIMITIVES)}")
    names = PRIMITIVE_PARAMS[kind]
    unknown = set(size) - set(names)
    missing = set(names) - set(size)
    if unknown or missing:
        raise ValueError(f"{kind} takes sizes {names}; unknown {sorted(unknown)}, missing {sorted(missing)}")
    params = torch.zeros(1, 4)
    params[0, : len(names)] = torch.tensor([float(size[n]) for n in names])
    if kind == "ellipsoid":
        params[0, 3] = params[0, :3].min()
    part = Part(
        kind=torch.tensor([_KIND[kind]]),
        params=params,
        color=torch.tensor([color], dtype=torch.float32),
        shininess=torch.tensor([float(shininess)]),
        translation=torch.zeros(1, 3),
        rotation=torch.eye(3)[None],
        scale=torch.ones(1),
        blend=torch.tensor([float(blend)]),
        clip=torch.tensor([clip if clip is not None else (0.0, 0.0, 0.0, 0.0)], dtype=torch.float32),
    )
    return Scene([part])


def union(*scenes: Scene) -> Scene:
    """Join scenes (same batch size) into one: their parts in order, each joined with its own `blend` radius."""
    return Scene([p for s in scenes for p in s.parts])


def stack(scenes: list[Scene]) -> Scene:
    """Batch single scenes with the same number of parts into one Scene of B = len(scenes) (kinds may differ)."""
    counts = {len(s.parts) for s in scenes}
    if len(counts) != 1:
        raise ValueError(f"stack needs scenes with the same number of parts, got {sorted(counts)}")
    parts = []
    for j in range(counts.pop()):
        parts.append(Part(*(torch.cat([getattr(s.parts[j], n) for s in scenes]) for n in _FIELDS)))
    return Scene(parts)
