"""Options shared by several commands (one definition, one help text), and configs built from options."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import typer

from tristudio.core.threads import THREADS_HELP, resolve_threads

__all__ = ["config_from", "threads_option"]

T = TypeVar("T")


def _check_threads(value: str) -> str:
    try:
        resolve_threads(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number >= 1, or 0 / auto, got {value!r}") from None
    return value


def threads_option(help: str = THREADS_HELP) -> str:
    """`--threads N | 0 | auto` (default auto); pass the value to core.threads.apply_threads (or resolve_threads)."""
    return typer.Option("auto", "--threads", help=help, callback=_check_threads)


def config_from(cls: type[T], options: dict, **fields) -> T:
    """The dataclass `cls` from a command's options: each field named like an option takes that option's value;
    `fields` gives the others (and overrides). `options` is the command's `dict(locals())` taken on entry."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in options.items() if k in names}, **fields})
