"""Render a procedural world (core/worlds) into an EG3D dataset with captions, resumably and atomically.

Layout while working: a sibling work folder `.<out name>.partial/` holding `params.json` (DatasetSpec.params), the
rendered PNGs, and one `chunks/NNNNNN.json` per finished chunk (written atomically after the chunk's PNGs: it is the
chunk's commit record). Rerunning the same command after an interruption keeps every committed chunk whose images
are all present and renders the rest; a rerun with different parameters discards the work folder and starts over.
Item i is rendered from its own seeds (seed, i), so a resumed dataset is identical to an uninterrupted one. Only
when every chunk is done is the final folder or zip written (atomically: temporary sibling, then rename) and the
work folder removed: `out` is never half-written.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import atomic_write_text
from ..worlds.camera_sampling import camera_yaw_pitch, head_cameras, object_cameras
from ..worlds.captions import view_word
from ..worlds.heads import sample_heads
from ..worlds.heads2 import sample_heads2
from ..worlds.objects import sample_objects
from ..worlds.render import render
from .dataset import CAPTIONS_FILE, LABELS_FILE, _labels_json, encode_png, image_name, write_files

__all__ = ["WORLDS", "DatasetSpec", "check_output", "make_dataset", "work_dir", "item_seed", "render_items"]

WORLDS = ("heads", "heads2", "objects")  # heads: v1, the shipped model's world (kept as is); heads2: v2, centred
FORMAT_VERSION = 1


def item_seed(seed: int, index: int) -> int:
    """The seed of item `index` of a dataset made with `seed` (world and camera generators derive from it).

    Dataset seed 0 gives items 0, 1, 2, ...; any other seed an offset block in [2^31, 2^32). Item seeds stay below
    2^32 on purpose: torch's CPU generator keeps only the low 32 bits of a seed, so seeds that differ above bit 31
    would give the very same heads and cameras."""
    seed, index = int(seed), int(index)
    if seed == 0:
        return index
    return (1 << 31) + (seed * 2654435761 + index) % (1 << 31)


def work_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def _work_params(work: Path) -> dict | None:
    """The params.json of a work folder of ours ({} for one killed before writing it: only an empty chunks/), or
    None for a folder that is not ours."""
    try:
        params = json.loads((work / "params.json").read_text())
    except (OSError, ValueError):
        entries = list(work.iterdir()) if work.is_dir() else [work]
        fresh = [p.name for p in entries] == ["chunks"] and not any((work / "chunks").iterdir())
        return {} if fresh or not entries else None
    return params if isinstance(params, dict) and "world" in params else None


def _world_items(world: str, seeds: list[int], cameras: str):
    """The items of `world` for `seeds`: (scene batch, one camera per item; the heads worlds' from `cameras`)."""
    if world == "heads":
        return sample_heads(seeds), head_cameras(seeds, cameras)
    if world == "heads2":
        return sample_heads2(seeds), head_cameras(seeds, cameras)
    if world == "objects":
        return sample_objects(seeds), object_cameras(seeds)
    raise ValueError(f"unknown world {world!r}; expected one of {', '.join(WORLDS)}")


def render_items(world: str, seeds: list[int], resolution: int, supersample: int = 2, cameras: str = "ffhq"):
    """Render items: (uint8 images (n, R, R, 3), labels (n, 25), caption records). `cameras`: the heads worlds'
    camera distribution (ffhq | rebalanced, core/worlds/camera_sampling.py). heads2 records carry the identity
    (Identity.to_json(): parameters, hair style, glasses, colour words)."""
    if cameras != "ffhq" and world == "objects":
        raise ValueError(f"--cameras {cameras} applies to the heads worlds only")
    batch, cams = _world_items(world, seeds, cameras)
    out = render(batch.scene, cams, resolution, supersample=supersample)
    images = (out.rgb * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    yaw, pitch, _ = camera_yaw_pitch(cams.cam2world)
    views = view_word(yaw, pitch)
    plain, with_view = batch.captions(), batch.captions(views)
    records = []
    for i in range(len(seeds)):
        rec = {"caption": plain[i], "caption_view": with_view[i], "view": views[i]}
        if world in ("heads", "heads2"):
            rec.update(hair=batch.hair[i], skin=batch.skin[i])
            if world == "heads2":
                rec.update(identity=batch.identities[i].to_json())
        else:
            rec.update(shape=batch.shape[i], color=batch.color[i], material=batch.material[i])
        rec.update(yaw_deg=round(math.degrees(float(yaw[i])), 3), pitch_deg=round(math.degrees(float(pitch[i])), 3))
        records.append(rec)
    return images, cams.label(), records


def gt_name(name: str) -> str:
    """Ground-truth file of image `name`: "00000/img00000000.png" -> "gt/00000/img00000000.npz"."""
    return "gt/" + name.rsplit(".", 1)[0] + ".npz"


def render_ground_truth(world: str, seeds: list[int], resolution: int, cameras: str = "ffhq") -> list[bytes]:
    """Per item, the bytes of an .npz with the pixel-centre ground truth of its render (core/worlds/render.py):
    depth (R, R) float16 ray distance (inf where the ray misses), normals (R, R, 3) int8 = round(127 n) (unit
    world-space normals, 0 where missed), mask (R, R) bool."""
    import io

    batch, cams = _world_items(world, seeds, cameras)
    out = render(batch.scene, cams, resolution)
    blobs = []
    for i in range(len(seeds)):
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            depth=out.depth[i].numpy().astype(np.float16),
            normals=(out.normals[i] * 127).round().to(torch.int8).numpy(),
            mask=out.mask[i].numpy(),
        )
        blobs.append(buf.getvalue())
    return blobs


def _chunk_done(work: Path, k: int, names: list[str]) -> dict | None:
    record = work / "chunks" / f"{k:06d}.json"
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except json.JSONDecodeError:
        return None
    if [e["name"] for e in data["items"]] != names or not all((work / n).is_file() for n in names):
        return None
    return data


# image folders and images, their ground truth (gt_name), dataset.json, captions.json (folder entries end in "/")
_DATASET_NAME = re.compile(
    r"^((gt/)?\d{5}/?|\d{5}/img\d{8}\.png|gt/|gt/\d{5}/img\d{8}\.npz|dataset\.json|captions\.json)$"
)


def _foreign(names: list[str]) -> list[str]:
    """Entries that a tristudio-made EG3D dataset would not hold (someone else's files)."""
    return sorted(n for n in names if not _DATASET_NAME.match(n))


def check_output(out: str | Path, overwrite: bool = False) -> None:
    """Refuse to replace what is not a dataset made by tristudio: a non-empty folder or a file holding anything but
    `NNNNN/imgNNNNNNNN.png`, their ground truth `gt/NNNNN/imgNNNNNNNN.npz`, dataset.json and captions.json
    (FileExistsError naming a few of the files). An existing dataset of that form is replaced (atomically, at the
    end); `overwrite` replaces anything."""
    out = Path(out)
    for p in out.parents:
        if p.exists() and not p.is_dir():
            raise NotADirectoryError(f"--out {out}: {p} is a file, not a folder")
    if not out.exists() and not out.is_symlink() or overwrite:
        return
    zipped = out.suffix.lower() == ".zip"
    if out.is_dir() and not zipped:
        names = [p.relative_to(out).as_posix() + ("/" if p.is_dir() else "") for p in out.rglob("*")]
    elif out.is_file() and zipped:
        try:
            with zipfile.ZipFile(out) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            raise FileExistsError(
                f"--out {out} exists and is not a zip dataset; pass --overwrite to replace it"
            ) from None
        if not names:
            return
    else:
        kind = "folder" if out.is_dir() else "file"
        raise FileExistsError(
            f"--out {out} is an existing {kind}; a dataset is a folder, or a file ending in .zip (pass --overwrite to "
            "replace it)"
        )
    foreign = _foreign(names)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FileExistsError(
            f"--out {out} holds files that are not part of a tristudio dataset ({shown}); choose an empty or new "
            "folder, or pass --overwrite to replace it"
        )


_V1_FIELDS = ("world", "count", "resolution", "seed", "supersample", "chunk")  # params.json's keys since version 1


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is rendered from: `count` items of `world` at `resolution` px (each rendered at
    `resolution * supersample` and box-filtered down), item i from its own seed item_seed(seed, i), committed `chunk`
    items at a time. `cameras`: the heads worlds' camera distribution (render_items); `ground_truth`: also, per image,
    its gt/NNNNN/imgNNNNNNNN.npz (render_ground_truth). With FORMAT_VERSION it is the work folder's params.json: a
    rerun with the same spec resumes."""

    world: str
    count: int
    resolution: int
    seed: int = 0
    supersample: int = 2
    chunk: int = 32
    cameras: str = "ffhq"
    ground_truth: bool = False

    def __post_init__(self):
        if self.world not in WORLDS:
            raise ValueError(f"unknown world {self.world!r}; expected one of {', '.join(WORLDS)}")
        if self.count < 1 or self.resolution < 4:
            raise ValueError(
                f"need count >= 1 and resolution >= 4, got count={self.count}, resolution={self.resolution}"
            )
        if self.supersample < 1 or self.chunk < 1:
            raise ValueError(f"need supersample >= 1 and chunk >= 1, got {self.supersample}, {self.chunk}")

    def params(self) -> dict:
        """params.json. `cameras` and `ground_truth` are written only when not their defaults, so the params (and
        the resumability) of work folders written before they existed are unchanged."""
        params = dict(version=FORMAT_VERSION, **{k: v for k, v in asdict(self).items() if k in _V1_FIELDS})
        if self.cameras != "ffhq":
            params["cameras"] = self.cameras
        if self.ground_truth:
            params["ground_truth"] = True
        return params


def make_dataset(
    spec: DatasetSpec,
    out: str | Path,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Render the dataset `spec` into the EG3D dataset `out` (folder, or zip if .zip). `progress(done, total)` is
    called as items finish (resumed items count as done at once); `log` gets a line when earlier work is resumed or
    discarded. Returns `out`. An existing `out` that is not a tristudio dataset is refused (check_output) unless
    `overwrite`, and so is a work folder that is not tristudio's (FileExistsError: a user's `.<name>.partial/`).
    """
    out = Path(out)
    check_output(out, overwrite)
    work = work_dir(out)
    params = spec.params()
    params_file = work / "params.json"
    if work.exists():
        earlier = _work_params(work)
        if earlier is None:
            raise FileExistsError(
                f"{work} is in the way: it is not a dataset's work folder (no params.json); move it away"
            )
        say = log or (lambda line: None)
        if earlier == params:
            say(f"resuming from {work}")
        else:
            if earlier:  # ({}: nothing was rendered there yet)
                say(f"discarding {work}: its images were made with other parameters")
            shutil.rmtree(work)
    (work / "chunks").mkdir(parents=True, exist_ok=True)
    atomic_write_text(params_file, json.dumps(params))

    names_all = [image_name(i) for i in range(spec.count)]
    labels_all: list[list[float]] = []
    captions: dict[str, dict] = {}
    done = 0
    for k, start in enumerate(range(0, spec.count, spec.chunk)):
        names = names_all[start : start + spec.chunk]
        data = _chunk_done(work, k, names)
        if data is not None and spec.ground_truth and not all((work / gt_name(n)).is_file() for n in names):
            data = None
        if data is None:
            seeds = [item_seed(spec.seed, i) for i in range(start, start + len(names))]
            images, labels, records = render_items(spec.world, seeds, spec.resolution, spec.supersample, spec.cameras)
            for name, image in zip(names, images, strict=True):
                target = work / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(encode_png(np.ascontiguousarray(image)))
            if spec.ground_truth:
                for name, blob in zip(
                    names, render_ground_truth(spec.world, seeds, spec.resolution, spec.cameras), strict=True
                ):
                    target = work / gt_name(name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(blob)
            items = [
                {"name": n, "label": [float(x) for x in lab], "caption": rec}
                for n, lab, rec in zip(names, labels.tolist(), records, strict=True)
            ]
            data = {"items": items}
            atomic_write_text(work / "chunks" / f"{k:06d}.json", json.dumps(data))
        for item in data["items"]:
            labels_all.append(item["label"])
            captions[item["name"]] = item["caption"]
        done += len(names)
        if progress is not None:
            progress(done, spec.count)

    extra = {
        LABELS_FILE: _labels_json(names_all, torch.tensor(labels_all)).encode(),
        CAPTIONS_FILE: json.dumps(captions, indent=1).encode(),
    }
    files = names_all + ([gt_name(n) for n in names_all] if spec.ground_truth else [])
    if out.suffix.lower() == ".zip":
        write_files(out, ((n, (work / n).read_bytes()) for n in files), extra)
    else:
        write_files(out, ((n, work / n) for n in files), extra)
    shutil.rmtree(work, ignore_errors=True)
    return out
