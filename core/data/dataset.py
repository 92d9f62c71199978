"""EG3D dataset format: a folder or zip of PNGs plus `dataset.json` = {"labels": [["rel/path.png", [25 floats]], ...]}.

Paths inside the dataset use "/". The 25 floats are the camera label of core/cameras.py (OpenCV cam2world row-major,
then normalised intrinsics). Images are uint8 RGB, all of one square resolution. Writers lay images out as EG3D's
dataset_tool does ("00000/img00000000.png", 1000 per folder) and write atomically (temporary sibling, then rename).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, UInt8
from PIL import Image
from torch import Tensor

from ..io.atomic import atomic_path

__all__ = [
    "LABELS_FILE",
    "CAPTIONS_FILE",
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "DatasetStore",
    "image_name",
    "encode_png",
    "decode_image",
    "read_labels",
    "read_captions",
    "read_dataset",
    "write_dataset",
    "flip_label",
    "EG3DDataset",
]

LABELS_FILE = "dataset.json"
CAPTIONS_FILE = "captions.json"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DatasetError(RuntimeError):
    """A dataset that cannot be read; the message names the dataset and the problem."""


class DatasetStore:
    """Read-only access to the files of a dataset folder or zip by their "/"-separated relative names."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such dataset folder or zip")
        if self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise DatasetError(f"{self.path}: not a folder and not a readable zip ({exc})") from exc

    def names(self) -> list[str]:
        if self._zip is not None:
            return sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def has(self, name: str) -> bool:
        if self._zip is not None:
            try:
                self._zip.getinfo(name)
                return True
            except KeyError:
                return False
        return (self.path / name).is_file()

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> "DatasetStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def image_name(index: int) -> str:
    """EG3D dataset_tool layout: 1000 images per folder."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def encode_png(image: UInt8[np.ndarray, "h w 3"]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_image(data: bytes) -> UInt8[np.ndarray, "h w c"]:
    """Decode an image file's bytes to uint8 (H, W, C) with C = 1 or 3 (other modes converted to RGB). 16-bit
    grayscale (PNG: mode "I;16", "I" in older Pillow) is scaled to 8 bits, v * 255 / 65535 rounded (an 8-bit value
    stored as v * 257 comes back exact), where PIL's own conversion clips every value above 255 to white; integer
    samples outside 0..65535 (a 32-bit image) are a ValueError."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode.startswith("I"):
            arr = np.asarray(im).astype(np.int64)
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ValueError(f"{im.mode} samples {arr.min()}..{arr.max()} are not 8- or 16-bit")
            arr = ((arr * 255 + 32767) // 65535).astype(np.uint8)
        else:
            arr = np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
    return arr[..., None] if arr.ndim == 2 else arr


def _parse_labels(raw: bytes, where: str) -> list[tuple[str, list[float]]]:
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: {LABELS_FILE} is not valid JSON ({exc})") from exc
    labels = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(labels, list):
        raise DatasetError(f'{where}: {LABELS_FILE} has no "labels" list')
    out = []
    for k, entry in enumerate(labels):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f'{where}: {LABELS_FILE} entry {k} is not ["path", [floats]]')
        out.append((entry[0], entry[1]))
    return out


def read_labels(store: DatasetStore) -> list[tuple[str, list]]:
    """The (name, label) entries of dataset.json, in file order (labels not validated: see check.py)."""
    if not store.has(LABELS_FILE):
        raise DatasetError(f"{store.path}: no {LABELS_FILE}")
    return _parse_labels(store.read(LABELS_FILE), str(store.path))


def read_captions(path: str | os.PathLike) -> dict[str, dict]:
    """captions.json: {image name: {"caption": ..., "caption_view": ..., and the world's word fields}}."""
    with DatasetStore(path) as store:
        if not store.has(CAPTIONS_FILE):
            raise DatasetError(f"{path}: no {CAPTIONS_FILE}")
        return json.loads(store.read(CAPTIONS_FILE))


def read_dataset(
    path: str | os.PathLike,
) -> tuple[UInt8[Tensor, "n h w 3"], Float[Tensor, "n 25"], list[str]]:
    """All images (uint8, N H W C), labels (float32, N 25) and names, in dataset.json order."""
    with DatasetStore(path) as store:
        entries = read_labels(store)
        images, labels = [], []
        for name, label in entries:
            if not store.has(name):
                raise DatasetError(f"{path}: {name} is listed in {LABELS_FILE} but missing")
            if len(label) != 25:
                raise DatasetError(f"{path}: {name} has a label of {len(label)} floats, expected 25")
            images.append(torch.from_numpy(decode_image(store.read(name)).copy()))
            labels.append(label)
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise DatasetError(f"{path}: mixed image sizes {sorted(shapes)}")
    stacked = torch.stack(images) if images else torch.zeros(0, 0, 0, 3, dtype=torch.uint8)
    return stacked, torch.tensor(labels, dtype=torch.float32).reshape(-1, 25), [n for n, _ in entries]


def _labels_json(names: Sequence[str], labels) -> str:
    labels = torch.as_tensor(labels, dtype=torch.float32).reshape(len(names), 25)
    rows = [[n, [float(x) for x in row]] for n, row in zip(names, labels.tolist(), strict=True)]
    return json.dumps({"labels": rows})


def write_dataset(
    path: str | os.PathLike,
    images: Sequence[np.ndarray] | UInt8[Tensor, "n h w 3"],
    labels: Float[Tensor, "n 25"],
    names: Sequence[str] | None = None,
    captions: dict[str, dict] | None = None,
) -> Path:
    """Write images (uint8 H W 3 each) and their labels as an EG3D dataset; `path` ending in .zip writes a zip.

    Atomic: the dataset is written to a temporary sibling and renamed onto `path` only when complete.
    """
    path = Path(path)
    names = list(names) if names is not None else [image_name(i) for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"write_dataset: {len(images)} images but {len(names)} names")
    files = {LABELS_FILE: _labels_json(names, labels).encode()}
    if captions is not None:
        files[CAPTIONS_FILE] = json.dumps(captions, indent=1).encode()
    pngs = ((n, encode_png(np.asarray(im, dtype=np.uint8))) for n, im in zip(names, images, strict=True))
    write_files(path, pngs, files)
    return path


def write_files(path: Path, images, extra: dict[str, bytes]) -> None:
    """Atomically write (name, bytes) pairs plus `extra` files as a folder, or a zip when `path` ends in .zip."""
    if path.suffix.lower() == ".zip":
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in images:
                zf.writestr(name, data)
            for name, data in extra.items():
                zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        return
    with atomic_path(path, is_dir=True) as tmp:
        for name, data in images:
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, Path):  # an existing file: hard-link it (copy where links are not possible)
                try:
                    os.link(data, target)
                except OSError:
                    target.write_bytes(data.read_bytes())
            else:
                target.write_bytes(data)
        for name, data in extra.items():
            (Path(tmp) / name).write_bytes(data)


def flip_label(label: Float[Tensor, "... 25"]) -> Float[Tensor, "... 25"]:
    """The camera label of the x-mirrored image: world and camera x axes negated (cam2world -> F cam2world F with
    F = diag(-1, 1, 1, 1)), principal point cx -> 1 - cx and skew negated. For EG3D's centred intrinsics this
    negates label entries 1, 2, 3, 4, 8 as EG3D's own xflip does."""
    label = torch.as_tensor(label, dtype=torch.float32).clone()
    c2w = label[..., :16].reshape(*label.shape[:-1], 4, 4)
    f = torch.tensor([-1.0, 1.0, 1.0, 1.0])
    c2w = f[:, None] * c2w * f[None, :]
    k = label[..., 16:].reshape(*label.shape[:-1], 3, 3).clone()
    k[..., 0, 2] = 1 - k[..., 0, 2]
    k[..., 0, 1] = -k[..., 0, 1]
    return torch.cat([c2w.reshape(*label.shape[:-1], 16), k.reshape(*label.shape[:-1], 9)], dim=-1)


class EG3DDataset(torch.utils.data.Dataset):
    """A training loop's view of an EG3D dataset: item i -> (image uint8 (C, H, W), label float32 (25,)).

    Images are decoded lazily (the zip is opened per process, so DataLoader workers are safe). With `xflip=True`
    the dataset doubles: items N..2N-1 are the mirrored images with `flip_label` cameras.
    """

    def __init__(self, path: str | os.PathLike, xflip: bool = False):
        self.path = Path(path)
        self.xflip = xflip
        with DatasetStore(self.path) as store:
            entries = read_labels(store)
            first = decode_image(store.read(entries[0][0])) if entries else None
        bad = [n for n, lab in entries if len(lab) != 25]
        if bad:
            raise DatasetError(f"{self.path}: {len(bad)} labels are not 25 floats (first: {bad[0]})")
        self.names = [n for n, _ in entries]
        self.labels: Float[Tensor, "n 25"] = torch.tensor([lab for _, lab in entries], dtype=torch.float32)
        self.resolution = int(first.shape[0]) if first is not None else 0
        self.channels = int(first.shape[2]) if first is not None else 3
        self._store: DatasetStore | None = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.names) * (2 if self.xflip else 1)

    def _open(self) -> DatasetStore:
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = DatasetStore(self.path), os.getpid()
        return self._store

    def __getitem__(self, i: int) -> tuple[UInt8[Tensor, "c h w"], Float[Tensor, "25"]]:
        n = len(self.names)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        flipped, j = i >= n, i % n
        image = decode_image(self._open().read(self.names[j]))
        if image.shape[0] != self.resolution or image.shape[1] != self.resolution:
            raise DatasetError(
                f"{self.path}: {self.names[j]} is {image.shape[1]}x{image.shape[0]}, "
                f"expected {self.resolution}x{self.resolution}"
            )
        label = self.labels[j]
        if flipped:
            image, label = image[:, ::-1], flip_label(label)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), label

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_store"] = None
        return state
