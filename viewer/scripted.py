"""Driving the real viewer from a script through imgui's test engine (the GUI tests, scripts/screenshots.py).

wait_until(ctx, lambda: app.settled(), 60, "the full-quality frame")   # ctx: the test engine's context
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(ctx, cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run frames (ctx.yield_()) until cond() holds; TimeoutError naming `what` after `timeout` s."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        ctx.yield_()
        if cond():
            return
        time.sleep(0.005)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
