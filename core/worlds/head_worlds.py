"""The heads worlds by name: "heads" (v1, the shipped model's world, kept as is) and "heads2" (v2, centred).

sample = head_sampler("heads2", "ID-sw")    # sample_heads2; an unknown name: ValueError "ID-sw: unknown ..."
"""

from __future__ import annotations

from collections.abc import Callable

from .heads import sample_heads
from .heads2 import sample_heads2

__all__ = ["HEAD_WORLDS", "head_sampler"]

HEAD_WORLDS: dict[str, Callable] = {"heads": sample_heads, "heads2": sample_heads2}  # name -> sample_*(seeds, start)


def head_sampler(world: str, what: str) -> Callable:
    """The sampler of the heads world `world`; `what` names the caller in the error for an unknown world."""
    if world not in HEAD_WORLDS:
        raise ValueError(f"{what}: unknown heads world {world!r} ({' | '.join(HEAD_WORLDS)})")
    return HEAD_WORLDS[world]
