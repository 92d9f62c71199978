"""tristudio's one checkpoint format: a folder with `<name>.safetensors` (tensors) and `<name>.json` (metadata).

    save_checkpoint(folder, {"G_ema.backbone...": tensor, ...}, {"format": "tristudio-eg3d", ...})
    tensors, meta = load_checkpoint(folder)

Both files are written atomically (temp + rename), tensors first, JSON last: the JSON's presence marks a complete
checkpoint, and the JSON holds the tensor file's SHA-256 (`safetensors_sha256`, checked on load), so a folder caught
between the two renames (new tensors beside old JSON) is reported as corrupt, never loaded silently. Non-tensor state
(step counters, RNG states as lists of ints, configs) goes in the JSON. Training runs keep a series of such folders
through core/io/run_checkpoints.py (one step = one folder renamed into place).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_path, atomic_write_text

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_exists",
    "file_sha256",
    "folder_fingerprint",
]


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete or corrupt."""


def save_checkpoint(
    folder: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict, name: str = "model", check_finite=True
) -> Path:
    """Write folder/name.safetensors then folder/name.json (with the tensors' hash), each atomically; see the module
    doc. Nothing is written when a tensor is not finite (check_finite) or the metadata cannot be stored as JSON."""
    folder = Path(folder)
    json.dumps(meta, default=_json_default)  # TypeError now, before the tensor file replaces a good one
    folder.mkdir(parents=True, exist_ok=True)
    clean = {}
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"save_checkpoint: {key!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().to("cpu").contiguous()
        if check_finite and t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"save_checkpoint: tensor {key!r} holds NaN or Inf; refusing to write {folder}")
        clean[key] = t
    with atomic_path(folder / f"{name}.safetensors") as tmp:
        try:
            save_file(clean, str(tmp))
        except (SafetensorError, OSError) as exc:  # ENOSPC comes back as a SafetensorError
            raise CheckpointError(f"cannot write {folder / (name + '.safetensors')}: {_short(exc)}") from None
        digest = file_sha256(tmp)
    meta = {**meta, HASH_KEY: digest}
    try:
        atomic_write_text(folder / f"{name}.json", json.dumps(meta, indent=2, sort_keys=False, default=_json_default))
    except OSError as exc:
        raise CheckpointError(f"cannot write {folder / (name + '.json')}: {_short(exc)}") from None
    return folder


HASH_KEY = "safetensors_sha256"


def file_sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_fingerprint(folder: str | os.PathLike, sample: int = 8 << 20) -> str:
    """A SHA-256 of a model folder's files (names and contents), to tell whether a model changed (retrained,
    replaced). Files over 8 x `sample` bytes enter by their size and their first and last `sample` bytes: a few MB
    read for a multi-GB checkpoint, and any training step changes those bytes too."""
    h = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        h.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
        with open(path, "rb") as f:
            if size <= 8 * sample:
                h.update(f.read())
            else:
                h.update(f.read(sample))
                f.seek(size - sample)
                h.update(f.read(sample))
    return h.hexdigest()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _json_default(obj):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def checkpoint_exists(folder: str | os.PathLike, name: str = "model") -> bool:
    folder = Path(folder)
    return (folder / f"{name}.json").is_file() and (folder / f"{name}.safetensors").is_file()


def load_checkpoint(
    folder: str | os.PathLike,
    name: str = "model",
    device="cpu",
    check_finite=True,
    expect_format: str | None = None,
    what: str = "checkpoint",
) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of folder/name.{safetensors,json}; CheckpointError (a ValueError) naming the file for a
    missing or corrupt pair, a hash mismatch, NaN / Inf (check_finite) or another `format` than `expect_format`.
    `what` is what the messages call the folder (a "render set" is stored in the checkpoint format too)."""
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(f"{what} folder not found: {folder}")
    meta_path, tensor_path = folder / f"{name}.json", folder / f"{name}.safetensors"
    for p in (meta_path, tensor_path):
        if not p.is_file():
            raise CheckpointError(f"incomplete {what}: {p} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"corrupt {what} metadata {meta_path}: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"corrupt {what} metadata {meta_path}: not a JSON object")
    expected = meta.pop(HASH_KEY, None)
    if expected is not None and file_sha256(tensor_path) != expected:
        raise CheckpointError(
            f"corrupt {what}: {tensor_path} does not match the hash in {meta_path.name} (interrupted write?)"
        )
    try:
        tensors = load_file(str(tensor_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"corrupt {what} tensors {tensor_path}: {exc}") from None
    if check_finite:
        for key, t in tensors.items():
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise CheckpointError(f"{what} {tensor_path}: tensor {key!r} holds NaN or Inf")
    if expect_format is not None and meta.get("format") != expect_format:
        raise CheckpointError(f"{folder} is not a {expect_format} folder (its format: {meta.get('format')!r})")
    return tensors, meta


def optimizer_state_to_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state_dict into tensors (for safetensors) and JSON metadata (param groups, scalars)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_state_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str
) -> None:
    """Inverse of `optimizer_state_to_tensors`: load the state back into `optimizer` (same parameter order)."""
    state: dict[int, dict] = {}
    head = f"{prefix}.state."
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def generator_state_to_tensor(gen: torch.Generator) -> torch.Tensor:
    return gen.get_state().clone()


def generator_state_from_tensor(gen: torch.Generator, state: torch.Tensor) -> None:
    gen.set_state(state.to(torch.uint8).cpu())
