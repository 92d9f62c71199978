"""Shared pieces of the offline loaders: the error type, folder checks, device and dtype choice.

Nothing here downloads: every path is checked to be an existing local folder before any `from_pretrained` runs,
and the Hugging Face libraries are switched to offline mode before they are imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..device import resolve_device  # noqa: F401  (re-exported: the loaders' device choice)

__all__ = ["PriorLoadError", "go_offline", "require_folder", "require_file", "resolve_device", "resolve_dtype"]


class PriorLoadError(ValueError):
    """A prior or CLIP folder cannot be loaded. The message is one line naming the path expected and the layout."""


def go_offline() -> None:
    """Switch huggingface_hub / transformers / diffusers to offline mode (call before importing them)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def require_folder(path: str | os.PathLike, layout: str) -> Path:
    """The local folder `path`, or a PriorLoadError saying that it is missing (a hub id is never downloaded)."""
    folder = Path(path).expanduser().absolute()
    if folder.is_dir():
        return folder.resolve()
    if folder.exists():
        raise PriorLoadError(f"{folder} is a file: expected a local {layout}")
    looks_like_hub_id = isinstance(path, str) and path.count("/") == 1 and not path.startswith((".", "/", "~"))
    hint = " (it looks like a hub id; tristudio never downloads: download the folder and pass its local path)"
    raise PriorLoadError(f"no folder at {folder}: expected a local {layout}" + (hint if looks_like_hub_id else ""))


def model_folder(path: str | os.PathLike, layout: str, kind: str) -> Path:
    """require_folder, where a `tristudio train clip | prior` run folder stands for its exported RUN/export
    (training_run.run_export, kind "clip" | "prior"); PriorLoadError for a run that has exported nothing yet."""
    from ..io.training_run import run_export

    try:
        return run_export(require_folder(path, layout), kind)
    except FileNotFoundError as exc:
        raise PriorLoadError(str(exc)) from None


def require_file(folder: Path, name: str, layout: str) -> Path:
    """folder/name, or a PriorLoadError naming it and the layout that needs it (works for subfolders too)."""
    target = folder / name
    if not target.exists():
        kind = "subfolder" if "." not in name else "file"
        raise PriorLoadError(f"missing {kind} {target} (needed by the {layout} layout)")
    return target


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """Compute dtype: the one asked for, else float16 on CUDA and float32 elsewhere (weights are cast on load)."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        named = {
            "fp32": torch.float32,
            "float32": torch.float32,
            "fp16": torch.float16,
            "float16": torch.float16,
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
        }
        if dtype not in named:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(named)}")
        return named[dtype]
    return dtype
