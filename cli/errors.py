"""One clear line for every bad input: markup-safe printing of user strings and the CLI's error exits.

console.print(f"wrote {esc(out)}")                 # a path or prompt holding "[/]" or "[bold]" prints as typed
fail("--out: /x is a file, not a folder")          # 'error: ...' (markup-escaped), exit code 1
with clean_errors(): run(...)                      # expected failures (bad files, locks, disk full) -> fail(...)
finite(value, "--trunc"); at_least(value, 1, "-n") # typer.BadParameter naming the option (exit code 2)
positive(lr, "--lr", "learning rate")              # finite and > 0
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape

__all__ = ["at_least", "clean_errors", "esc", "fail", "finite", "out_folder", "positive"]


def esc(value) -> str:
    """`value` as text that rich prints verbatim (square brackets are not read as markup)."""
    return escape(str(value))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print 'error: message' (one line, on stderr: a command's stdout holds only its results, so
    `tristudio eval pose ... > pose.json` never writes an error into the JSON) and exit with `code`."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {esc(message)}")
    raise typer.Exit(code)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on device{where}; nothing was replaced, free some space and run again"
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, KeyError):
        text = f"missing entry {text}"
    lines = text.splitlines()
    return lines[0] if len(lines) == 1 else " ".join(line.strip() for line in lines if line.strip())


def _expected() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    from tristudio.core.data.dataset import DatasetError
    from tristudio.core.io.checkpoint import CheckpointError
    from tristudio.core.io.runlock import RunLockedError

    return (
        CheckpointError,
        DatasetError,
        RunLockedError,
        OSError,
        ValueError,
        KeyError,
        FloatingPointError,
        SafetensorError,
    )


@contextlib.contextmanager
def clean_errors(*extra: type[BaseException]):
    """Turn the expected failures of a command (and `extra` ones) into `fail(...)`; bugs still show a traceback."""
    try:
        yield
    except (typer.Exit, typer.BadParameter, KeyboardInterrupt):
        raise
    except _expected() + extra as exc:
        text = _message(exc)
        if "No space left on device" in text:
            text = f"no space left on device ({text}); nothing was replaced, free some space and run again"
        fail(text)


def finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number", param_hint=name)
    return value


def at_least(value: float | None, low: float, name: str) -> float | None:
    finite(value, name)
    if value is not None and value < low:
        raise typer.BadParameter(f"{value} is below the minimum {low}", param_hint=name)
    return value


def positive(value: float | None, name: str, what: str = "number") -> float | None:
    """A finite `value` > 0 (None passes: the option's default applies); `what` it is, for the message."""
    finite(value, name)
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} is not a positive {what}", param_hint=name)
    return value


# Names that say "a file" (an image, a video, a mesh, a model): as a new output folder they are almost surely a slip.
FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".mp4", ".gif", ".ply", ".obj", ".glb", ".pkl", ".safetensors", ".json")


def fresh_folder(out: Path, overwrite: bool, marker: str, what: str) -> None:
    """An --out to fill from scratch is new or empty, unless --overwrite: `what` there (a folder holding `marker`:
    hours of rendering, a trained model) and a user's files are refused, naming them, before any work."""
    held = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() and not overwrite else []
    if marker in held:
        raise typer.BadParameter(f"{out} already holds {what}: pass --overwrite to replace it", param_hint="--out")
    if held:
        more = ", ..." if len(held) > 3 else ""
        raise typer.BadParameter(
            f"{out} holds other files ({', '.join(held[:3])}{more}): name a new or empty folder, or pass --overwrite",
            param_hint="--out",
        )


def out_folder(path: Path, name: str = "--out") -> Path:
    """An output folder that can be created (not an existing file, nor under one, nor a new one named like a file)."""
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise typer.BadParameter(f"{p} is a file, not a folder", param_hint=name)
        if p.is_symlink() and not p.exists():
            raise typer.BadParameter(f"{p} is a link to {os.readlink(p)}, which does not exist", param_hint=name)
    if not path.exists() and path.suffix.lower() in FILE_SUFFIXES:
        raise typer.BadParameter(
            f"{path} is named like a {path.suffix} file, but {name} is a folder (e.g. {path.with_suffix('')})",
            param_hint=name,
        )
    return path
