"""One writer per run folder: RUN_DIR/.lock holds the owning process id.

    with run_lock(out):      # RunLockedError("... is locked by pid 1234 ...") while another live process holds it
        train(...)

The lock is created with O_EXCL (atomic). A lock whose process is gone (killed run) is stale and taken over.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from .atomic import umask_mode

__all__ = ["RunLockedError", "run_lock", "live_holder"]

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is writing into the same run folder."""


def _holder(lock: Path) -> tuple[int | None, str]:
    try:
        fields = lock.read_text().split()
        return int(fields[0]), (fields[1] if len(fields) > 1 else "")
    except (OSError, ValueError, IndexError):
        return None, ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_holder(run_dir: str | os.PathLike) -> int | None:
    """The pid of the live process on this machine that holds RUN_DIR's lock (a run writing there), else None."""
    pid, host = _holder(Path(run_dir) / LOCK_NAME)
    if pid is None or host not in ("", socket.gethostname()) or pid == os.getpid() or not _alive(pid):
        return None
    return pid


def _acquire(lock: Path) -> None:
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, umask_mode())
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()} {socket.gethostname()}\n")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, warn=None, lock: str | os.PathLike | None = None):
    """Hold RUN_DIR/.lock (or `lock`) for the duration of the block; see the module doc."""
    run_dir = Path(run_dir)
    lock = Path(lock) if lock is not None else run_dir / LOCK_NAME
    made = [d for d in (lock.parent, *lock.parent.parents) if not d.exists()]  # removed again if left empty
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            _acquire(lock)
            break
        except FileExistsError:
            pid, host = _holder(lock)
            other_host = host not in ("", socket.gethostname())  # cannot check a remote pid: assume it lives
            if pid is not None and (other_host or pid == os.getpid() or _alive(pid)):
                where = f" on {host}" if other_host else ""
                raise RunLockedError(
                    f"{run_dir} is in use: {lock} is held by pid {pid}{where}; wait for that run to finish or use "
                    "another folder"
                ) from None
            if warn is not None:
                warn(f"warning: taking over the stale lock {lock} (pid {pid} is gone)")
            lock.unlink(missing_ok=True)
    else:
        raise RunLockedError(f"could not take the lock {lock}")
    try:
        yield lock
    finally:
        if _holder(lock)[0] == os.getpid():
            lock.unlink(missing_ok=True)
        for folder in made:  # innermost first; a folder with anything in it stays (and so do those above it)
            try:
                folder.rmdir()
            except OSError:
                break
