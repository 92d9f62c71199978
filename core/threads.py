"""How many torch CPU threads to use: chosen from the cores this process may run on and how busy they are.

Rule (`auto_threads`): with C usable cores (os.sched_getaffinity, else os.cpu_count()) and L the 1-minute load
average (os.getloadavg(); runnable processes, ours included once we run), the threads are the cores left idle,

    threads = clamp(floor((C - L) / P + 0.5), 1, max(1, C // P))

for each of P processes started together (P = 1, or torchrun's WORLD_SIZE for `train eg3d`): an idle 2-core machine
gets 2 threads and a busy one 1. The reason: torch's intra-op threads wait for each other at every op, and on cores
that other processes hold each wait is a time slice lost: on the project's 2-core machine, busy
with other jobs, `tristudio sample` took 80-150 s with torch's default threads and 25 s with one, and 300 DreamFusion
steps 6-8 min against 80 s. Where the load average is unknown (not Unix) it is taken as 0.

Every CLI command with --threads takes 0 (or "auto") to mean this rule; `apply_threads` sets torch to the result.
A count above the machine's logical CPUs (os.cpu_count()) is refused: by the rule above such threads only wait for
each other, and a huge one crashes torch (100000 OpenMP threads segfault; 99999999999 overflows its int).
The viewer keeps `reserve=1` core for its GUI thread (never below one thread).
"""

from __future__ import annotations

import math
import os

__all__ = ["usable_cores", "machine_cpus", "auto_threads", "resolve_threads", "apply_threads", "THREADS_HELP"]


def usable_cores() -> int:
    """Cores this process may be scheduled on (the affinity mask under taskset / containers), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def machine_cpus() -> int:
    """The machine's logical CPUs (os.cpu_count()), at least 1: the most threads --threads accepts."""
    return max(1, os.cpu_count() or 1)


def auto_threads(cores: int | None = None, load: float | None = None, processes: int = 1, reserve: int = 0) -> int:
    """The thread count for each of `processes` processes on `cores` usable cores at 1-minute load average `load`
    (cores and load read from the OS if None), less `reserve` cores kept for other threads of this program."""
    cores = usable_cores() if cores is None else max(1, int(cores))
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    if not math.isfinite(load) or load < 0:
        load = 0.0
    processes = max(1, int(processes))
    threads = min(max(1, cores // processes), max(1, math.floor((cores - load) / processes + 0.5)))
    return max(1, threads - max(0, int(reserve)))


def resolve_threads(threads: int | str | None, processes: int = 1) -> int:
    """--threads value -> a thread count: None, 0 or "auto" -> auto_threads(); 1 <= n <= machine_cpus() -> n; else
    ValueError saying what is wrong with the value (the CLI prefixes the option's name)."""
    if threads is None or (isinstance(threads, str) and threads.strip().lower() in ("", "0", "auto")):
        return auto_threads(processes=processes)
    try:
        n = int(threads)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"expected a number >= 1, or 0 / auto, got {threads!r}")
    if n == 0:
        return auto_threads(processes=processes)
    cpus = machine_cpus()
    if n > cpus:
        raise ValueError(f"{n} is more than the {cpus} CPUs of this machine; use 1..{cpus}, or 0 / auto")
    return n


def apply_threads(threads: int | str | None) -> int:
    """Set torch's intra-op thread count from a --threads value; returns the count set."""
    import torch

    n = resolve_threads(threads)
    torch.set_num_threads(n)
    return n


THREADS_HELP = "torch CPU threads: a number, or 0 / auto = the cores left idle by the load average (core/threads.py)"
