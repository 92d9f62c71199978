"""How many torch threads to use: from the machine's core count and its current load.

On a busy 2-core machine torch's default (one thread per core) makes OpenMP threads wait for each other at every op:
`tristudio sample` took 80-150 s for 4 images with the default and 25 s with one thread (issue 14). So take the cores
that are idle now (cores minus the 1-minute load average, which counts the runnable processes), keep `reserve` of them
for other work of the same program (the viewer's GUI thread), and never go below one.
"""

from __future__ import annotations

import os

__all__ = ["auto_threads"]


def auto_threads(reserve: int = 0, cores: int | None = None, load: float | None = None) -> int:
    """Threads for torch: idle cores (cores - 1-minute load average, rounded down) minus `reserve`, at least 1.

    `cores` / `load` default to this machine's (os.cpu_count(), os.getloadavg(); load 0 where it is unknown)."""
    cores = int(cores if cores is not None else (os.cpu_count() or 1))
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform
            load = 0.0
    idle = int(cores - max(0.0, float(load)))
    return max(1, min(cores, idle) - int(reserve))
