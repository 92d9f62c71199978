"""Options shared by several commands (one definition, one help text)."""

from __future__ import annotations

import typer

from tristudio.core.threads import THREADS_HELP, resolve_threads

__all__ = ["threads_option"]


def _check_threads(value: str) -> str:
    try:
        resolve_threads(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number >= 1, or 0 / auto, got {value!r}") from None
    return value


def threads_option(help: str = THREADS_HELP) -> str:
    """`--threads N | 0 | auto` (default auto); pass the value to core.threads.apply_threads (or resolve_threads)."""
    return typer.Option("auto", "--threads", help=help, callback=_check_threads)
