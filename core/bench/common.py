"""Timing helpers and the table + JSON report shared by every benchmark."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..device import resolve_device
from ..io.atomic import atomic_write_text

__all__ = ["resolve_device", "time_call", "report", "machine_info"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, warmup: int = 1, repeat: int = 5) -> dict:
    """Median / min wall time of fn() in milliseconds after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"ms_median": statistics.median(times), "ms_min": min(times), "repeat": repeat}


def machine_info(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "machine": platform.machine(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def report(name: str, title: str, rows: list[dict], device: torch.device, out: str | Path | None) -> Path | None:
    """Print rows as a rich table and write {name, title, machine, rows} as JSON to `out`."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns: list[str] = []
    for row in rows:
        for k in row:
            if k not in columns:
                columns.append(k)
    for c in columns:
        table.add_column(c, justify="right" if rows and isinstance(rows[0].get(c), (int, float)) else "left")
    for row in rows:
        table.add_row(*[_fmt(row.get(c, "")) for c in columns])
    Console().print(table)
    if out is None:
        return None
    out = Path(out)
    payload = {"benchmark": name, "title": title, "machine": machine_info(device), "rows": rows}
    atomic_write_text(out, json.dumps(payload, indent=2))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)
