"""Atomic file and folder writes: write to a temporary sibling, then rename over the target.

A reader never sees a half-written file; an interrupted writer leaves the previous version (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "replace_path",
    "umask_mode",
    "without_nan",
]


def umask_mode(is_dir: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask (tempfile's 0600/0700 would not)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return (0o777 if is_dir else 0o666) & ~mask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename inside it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    if sys.platform != "linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_path(tmp: Path, target: Path) -> None:
    """Move `tmp` onto `target` (file or folder). Files use one atomic rename; a folder target that already exists is
    swapped with the new one atomically where the system can (Linux), else first renamed aside (and put back if the new
    one fails to go in); the old folder is removed only after the new one is in place."""
    tmp, target = Path(tmp), Path(target)
    if tmp.is_dir() and target.is_dir() and _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old folder
        return
    if tmp.is_dir() and target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)  # the new folder could not go in: the previous one goes back where it was
            raise
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, is_dir: bool = False, suffix: str = ".tmp"):
    """Yield a temporary path next to `target`; on success it replaces `target`, on error it is removed.

    with atomic_path("out/model.safetensors") as tmp: save(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))
        os.chmod(tmp, umask_mode(is_dir=True))
    else:  # `suffix` lets writers that infer the format from the file name (ffmpeg) see the right extension
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, umask_mode())
    try:
        yield tmp
        if not is_dir:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, umask_mode())  # writers that recreate the file (safetensors) leave 0600
        replace_path(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def without_nan(value, key: str = "") -> tuple[object, list[str]]:
    """`value` (nested dicts / lists / numbers) with every float that is not finite replaced by None, JSON having no
    NaN or Infinity, and the dotted keys of those replaced (`consistency.depth_error`, `rows[2]`)."""
    undefined: list[str] = []

    def clean(v, at: str):
        if isinstance(v, float) and not math.isfinite(v):
            undefined.append(at)
            return None
        if isinstance(v, dict):
            return {k: clean(x, f"{at}.{k}" if at else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x, f"{at}[{i}]") for i, x in enumerate(v)]
        return v

    return clean(value, key), undefined
