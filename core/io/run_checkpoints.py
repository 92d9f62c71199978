"""A training run's checkpoints: one step = one folder renamed into place, a `latest` pointer written last.

    save_step(run_dir, step, tensors, meta, keep=3)       every trainer's checkpoint write
    loaded = load_latest(run_dir)                          -> Loaded(tensors, meta, step, folder) or None

Layout (RUN_DIR is the trainer's --out / work folder):

    RUN_DIR/checkpoints/step-00000123/model.safetensors   weights, optimiser moments, RNG states (core/io/checkpoint.py)
    RUN_DIR/checkpoints/step-00000123/model.json          metadata + the tensor file's SHA-256
    RUN_DIR/checkpoints/latest                            "step-00000123": the commit point, written atomically last

A step folder is assembled in a hidden temporary sibling (`.step-00000123.<random>`) and renamed into place in one
`os.replace`; only then is `latest` rewritten. A kill at any moment therefore leaves either the previous committed
checkpoint or the new one, never a mix. On load, temporary folders left by a kill are removed, step folders newer than
`latest` (renamed but never committed) are removed, and a committed folder that fails to load (missing file, bad JSON,
hash mismatch, NaN) is skipped for the previous one with a warning line. The newest `keep` committed folders are kept.
With no `latest` at all (a kill between the first rename and its commit, or a pointer lost), every step folder is
whole, having been renamed into place only once written: the newest is committed again, with a warning, rather than
all of them being removed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write_text, fsync_dir, replace_path, umask_mode
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "Loaded",
    "checkpoint_steps",
    "clean_orphans",
    "has_steps",
    "latest_step",
    "load_latest",
    "save_step",
    "step_folder",
]

# Fault injection for scripts/hostile.py: "N:rename" or "N:commit" SIGKILLs this process inside its N-th save, just
# before the step folder's rename or just before the `latest` pointer is written.
FAULT_ENV = "TRISTUDIO_FAULT_KILL_IN_SAVE"
_saves = 0

FOLDER = "checkpoints"
POINTER = "latest"
NAME = "model"
_STEP_RE = re.compile(r"^step-(\d{8,})$")
_TMP_RE = re.compile(r"^\..+\.tmp$")


@dataclass
class Loaded:
    tensors: dict[str, torch.Tensor]
    meta: dict
    step: int
    folder: Path


def _step_name(step: int) -> str:
    return f"step-{int(step):08d}"  # the name _STEP_RE reads back


def step_folder(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / FOLDER / _step_name(step)


def _steps(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _STEP_RE.match(p.name)) and p.is_dir())


def _pointer(root: Path) -> int | None:
    try:
        m = _STEP_RE.match((root / POINTER).read_text().strip())
    except (OSError, UnicodeDecodeError):
        return None
    return int(m.group(1)) if m else None


def checkpoint_steps(run_dir: str | os.PathLike) -> list[int]:
    """Committed step numbers, oldest first (folders up to the `latest` pointer; with no pointer at all, every step
    folder: each is whole, see the module doc, and a writer's clean_orphans commits the newest again)."""
    root = Path(run_dir) / FOLDER
    committed = _pointer(root)
    return [s for s in _steps(root) if committed is None or s <= committed]


def has_steps(run_dir: str | os.PathLike) -> bool:
    """Whether the run has any step folder, committed or not (trained state: a new run must not replace it)."""
    return bool(_steps(Path(run_dir) / FOLDER))


def latest_step(run_dir: str | os.PathLike) -> int | None:
    """The committed `latest` step without loading anything (None: no checkpoint yet)."""
    return _pointer(Path(run_dir) / FOLDER)


def save_step(
    run_dir: str | os.PathLike,
    step: int,
    tensors: dict[str, torch.Tensor],
    meta: dict,
    keep: int = 3,
    check_finite: bool = True,
) -> Path:
    """Write checkpoint `step` of the run as one unit (see the module doc); returns its folder."""
    global _saves
    _saves += 1
    root = Path(run_dir) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    final = step_folder(run_dir, step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        os.chmod(tmp, umask_mode(is_dir=True))
        save_checkpoint(tmp, tensors, {**meta, "step": int(step)}, name=NAME, check_finite=check_finite)
        _fault("rename")
        replace_path(tmp, final)  # the step folder appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    _fault("commit")
    atomic_write_text(root / POINTER, final.name + "\n")  # commit
    fsync_dir(root)
    _prune(root, int(step), keep)
    return final


def _fault(where: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{_saves}:{where}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _prune(root: Path, committed: int, keep: int) -> None:
    steps = [s for s in _steps(root) if s <= committed]
    for s in steps[: max(len(steps) - max(keep, 1), 0)]:
        shutil.rmtree(root / _step_name(s), ignore_errors=True)


def clean_orphans(run_dir: str | os.PathLike, warn: Callable[[str], None] | None = None) -> None:
    """Remove what a killed save left: hidden temporary files and folders (`.NAME.*.tmp` in the run folder, `.step-*`
    in checkpoints/) and step folders newer than the `latest` pointer."""
    for p in Path(run_dir).glob(".*"):  # atomic_path's temporaries (config.json, log.jsonl, exports) cut by a kill
        if _TMP_RE.match(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    root = Path(run_dir) / FOLDER
    if not root.is_dir():
        return
    committed = _pointer(root)
    steps = _steps(root)
    if committed is None and steps:  # whole folders, no pointer: the newest is committed again (module doc)
        if warn is not None:
            state = "is missing" if not (root / POINTER).exists() else "names no step folder (damaged)"
            warn(f"warning: {root / POINTER} {state}; committing {_step_name(steps[-1])}, the newest step folder")
        atomic_write_text(root / POINTER, _step_name(steps[-1]) + "\n")
        committed = steps[-1]
    for p in root.iterdir():
        if p.name.startswith(".step-") or p.name.startswith(f".{POINTER}."):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        elif (m := _STEP_RE.match(p.name)) and p.is_dir() and (committed is None or int(m.group(1)) > committed):
            if warn is not None:
                warn(f"warning: removing {p}: written but never committed (the run was interrupted while saving)")
            shutil.rmtree(p, ignore_errors=True)


def load_latest(
    run_dir: str | os.PathLike,
    device="cpu",
    warn: Callable[[str], None] | None = print,
    check_finite: bool = True,
    read_only: bool = False,
) -> Loaded | None:
    """Clean orphans, then load the newest committed checkpoint that reads back whole (falling back, with a warning,
    to older ones). None when the run has no checkpoint; CheckpointError when every one is corrupt. `read_only`: a
    reader that is not the run's writer (the viewer), which leaves the folder as it is: a live run's temporaries are
    not orphans."""
    if not read_only:
        clean_orphans(run_dir, warn)
    root = Path(run_dir) / FOLDER
    steps = checkpoint_steps(run_dir)[::-1]  # newest first
    for i, step in enumerate(steps):
        folder = root / _step_name(step)
        try:
            tensors, meta = load_checkpoint(folder, name=NAME, device=device, check_finite=check_finite)
        except CheckpointError as exc:
            if i + 1 == len(steps):
                raise
            if warn is not None:
                warn(f"warning: {exc}; falling back to {_step_name(steps[i + 1])}")
            continue
        return Loaded(tensors, meta, step, folder)
    return None
