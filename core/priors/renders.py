"""Captioned renders of the procedural worlds for the small-world CLIP and prior (cached in our checkpoint format).

    render_objects(seeds, resolution=64, supersample=1) -> RenderSet  "a [material] <colour> <shape>[, <view>]"
    render_heads(seeds, resolution=64, supersample=1) -> RenderSet  "a head with <hair> hair and <skin> skin[, <view>]"
    RenderSet.save(folder) / load_render_set(folder)
    RenderSet.random_captions(index, rng, ...)  random caption variants (material / view words kept or dropped)

Item i is the object `sample_objects([seed_i])` (or the head `sample_heads([seed_i])`) seen from
`object_cameras([seed_i])` (uniform orbit, radius 2.5, fov 30: DreamFusion's framing; core/worlds/camera_sampling.py),
so any seed range is reproducible on its own and train / held-out splits are seed ranges.
Images are uint8 (N, H, W, 3), white background; yaw / pitch in radians (core/cameras.py conventions).

Each item has two attribute slots besides its world: for objects `shape`, `color`, `material` are the shape, colour
and material words; for heads `shape` is "head", `color` the hair colour and `material` the skin tone.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..worlds.camera_sampling import camera_yaw_pitch, object_cameras
from ..worlds.captions import head_caption, object_caption, view_word
from ..worlds.heads import sample_heads
from ..worlds.objects import sample_objects
from ..worlds.render import render

__all__ = [
    "FORMAT",
    "HEAD",
    "RenderSet",
    "concat_render_sets",
    "load_render_set",
    "load_render_sets",
    "render_heads",
    "render_objects",
]

HEAD = "head"  # the shape slot of a head item

FORMAT = "tristudio-render-set"


@dataclass
class RenderSet:
    images: Tensor  # (N, H, W, 3) uint8, sRGB-ish shaded colour over white
    seeds: list[int]
    shape: list[str]  # shape word, or "head"
    color: list[str]  # colour word (objects) / hair colour (heads)
    material: list[str]  # material word (objects) / skin tone (heads)
    yaw: list[float]  # radians
    pitch: list[float]  # radians
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def is_head(self) -> list[bool]:
        return [s == HEAD for s in self.shape]

    def where(self, heads: bool) -> list[int]:
        """Indices of the head items (heads=True) or of the object items."""
        return [i for i, h in enumerate(self.is_head) if h == heads]

    @property
    def view(self) -> list[str]:
        return [view_word(y, p) for y, p in zip(self.yaw, self.pitch, strict=True)]

    def subset(self, index: Sequence[int]) -> RenderSet:
        index = list(index)
        pick = lambda xs: [xs[i] for i in index]  # noqa: E731
        return RenderSet(
            self.images[torch.as_tensor(index, dtype=torch.long)],
            pick(self.seeds),
            pick(self.shape),
            pick(self.color),
            pick(self.material),
            pick(self.yaw),
            pick(self.pitch),
            dict(self.meta),
        )

    def float_images(self, index=None) -> Tensor:
        """(n, 3, H, W) float in [0, 1]."""
        x = self.images if index is None else self.images[index]
        return x.permute(0, 3, 1, 2).float() / 255.0

    def caption(self, i: int, material: bool, view: bool) -> str:
        """Item i's caption; `material` keeps an object's material word (a head's caption always has both words)."""
        views = self.view[i] if view else None
        if self.shape[i] == HEAD:
            return head_caption(self.color[i], self.material[i], views)
        return object_caption(self.shape[i], self.color[i], self.material[i] if material else None, views)

    def random_captions(
        self, index: Sequence[int], rng: random.Random, p_material: float = 0.5, p_view: float = 0.5
    ) -> list[str]:
        """One caption per item: shape + colour (hair + skin) always, an object's material word and the view word
        each kept with its probability."""
        views = self.view
        out = []
        for i in index:
            keep_material = rng.random() < p_material
            v = views[i] if rng.random() < p_view else None
            if self.shape[i] == HEAD:
                out.append(head_caption(self.color[i], self.material[i], v))
            else:
                out.append(object_caption(self.shape[i], self.color[i], self.material[i] if keep_material else None, v))
        return out

    def save(self, folder: str | os.PathLike) -> Path:
        meta = dict(
            self.meta,
            format=FORMAT,
            seeds=self.seeds,
            shape=self.shape,
            color=self.color,
            material=self.material,
            yaw=self.yaw,
            pitch=self.pitch,
        )
        return save_checkpoint(folder, {"images": self.images}, meta, name="renders")


# renders.json's per-image lists and the type of their entries.
_LISTS = {"seeds": int, "shape": str, "color": str, "material": str, "yaw": float, "pitch": float}


def load_render_set(folder: str | os.PathLike) -> RenderSet:
    """The render set saved in `folder`; CheckpointError naming the file when it is incomplete, corrupt or
    inconsistent (images that are not uint8 (N, H, W, 3), a per-image list of renders.json of another length)."""
    folder = Path(folder)
    tensors, meta = load_checkpoint(folder, name="renders", expect_format=FORMAT, what="render set")
    images = tensors.get("images")
    if images is None or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        got = "none" if images is None else f"{images.dtype} {tuple(images.shape)}"
        raise CheckpointError(f"{folder / 'renders.safetensors'}: expected 'images', uint8 (N, H, W, 3); got {got}")
    n = len(images)
    for key, kind in _LISTS.items():
        values = meta.get(key)
        if not (isinstance(values, list) and len(values) == n and all(_is(v, kind) for v in values)):
            got = f"{len(values)} entries" if isinstance(values, list) else json.dumps(values)[:40]
            raise CheckpointError(
                f"{folder / 'renders.json'}: {key!r} must list one {kind.__name__} per image ({n} in "
                f"renders.safetensors); got {got}"
            )
    rest = {k: v for k, v in meta.items() if k not in _LISTS}
    return RenderSet(images, *(meta[k] for k in _LISTS), meta=rest)


def _is(value, kind: type) -> bool:
    """value is a `kind` as JSON gives it back (an int is a float; a bool is neither)."""
    ok = (int, float) if kind is float else kind
    return isinstance(value, ok) and not isinstance(value, bool)


def _render_world(world: str, seeds: Sequence[int], resolution: int, supersample: int, chunk: int) -> RenderSet:
    seeds = [int(s) for s in seeds]
    images, yaws, pitches, shapes, colors, materials = [], [], [], [], [], []
    for start in range(0, len(seeds), chunk):
        part = seeds[start : start + chunk]
        if world == "heads":
            batch = sample_heads(part)
            shapes += [HEAD] * len(part)
            colors += batch.hair
            materials += batch.skin
        else:
            batch = sample_objects(part)
            shapes += batch.shape
            colors += batch.color
            materials += batch.material
        cams = object_cameras(part)
        out = render(batch.scene, cams, resolution, supersample=supersample)
        images.append((out.rgb.clamp(0, 1) * 255).round().to(torch.uint8))
        yaw, pitch, _ = camera_yaw_pitch(cams.cam2world)
        yaws += yaw.tolist()
        pitches += pitch.tolist()
    meta = {"world": world, "resolution": resolution, "supersample": supersample}
    return RenderSet(torch.cat(images), seeds, shapes, colors, materials, yaws, pitches, meta)


def render_objects(seeds: Sequence[int], resolution: int = 64, supersample: int = 1, chunk: int = 64) -> RenderSet:
    """Render the objects world for the given seeds (one object + one orbit camera per seed)."""
    return _render_world("objects", seeds, resolution, supersample, chunk)


def render_heads(seeds: Sequence[int], resolution: int = 64, supersample: int = 1, chunk: int = 32) -> RenderSet:
    """Render the heads world for the given seeds (one head + one uniform-orbit camera per seed: backs of heads
    included, unlike the FFHQ-like EG3D datasets)."""
    return _render_world("heads", seeds, resolution, supersample, chunk)


def concat_render_sets(sets: Sequence[RenderSet], names: Sequence[str] | None = None) -> RenderSet:
    """One render set of `sets`, which must have one image size; `names` (their folders) name them in the error."""
    if not sets:
        raise ValueError("no render sets to concatenate")
    if len({tuple(s.images.shape[1:3]) for s in sets}) > 1:
        names = names or [f"render set {i + 1}" for i in range(len(sets))]
        sizes = ", ".join(
            f"{n} is {s.images.shape[2]}x{s.images.shape[1]} px" for n, s in zip(names, sets, strict=True)
        )
        raise ValueError(
            f"render sets of different image sizes cannot be used together ({sizes}): make them at one --resolution"
        )
    return RenderSet(
        torch.cat([s.images for s in sets]),
        *([x for s in sets for x in getattr(s, k)] for k in ("seeds", "shape", "color", "material", "yaw", "pitch")),
        meta=dict(sets[0].meta, world="+".join(sorted({str(s.meta.get("world", "objects")) for s in sets}))),
    )


def load_render_sets(folders: Sequence[str | os.PathLike]) -> RenderSet:
    """Load and concatenate render-set folders (a folder holding renders.json, or a parent of such shards)."""
    found: list[Path] = []
    for f in folders:
        f = Path(f)
        shards = [f] if (f / "renders.json").is_file() else sorted(p.parent for p in f.glob("*/renders.json"))
        if not shards:
            raise FileNotFoundError(f"no render set (renders.json) in {f} or its subfolders")
        found += shards
    return concat_render_sets([load_render_set(f) for f in found], [str(f) for f in found])
