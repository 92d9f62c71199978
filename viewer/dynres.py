"""Dynamic resolution for interactive frames: steer the render resolution towards a target frame time.

Changes only when the measured time leaves a band of +-`hysteresis` around the target (>= 20%), so the resolution
does not oscillate; never drops below `floor` (64 px, or the full resolution if that is smaller)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DynamicResolution"]


@dataclass
class DynamicResolution:
    full: int = 128
    target_ms: float = 70.0
    floor: int = 64
    hysteresis: float = 0.25
    step: int = 8
    current: int = 0

    def __post_init__(self):
        if self.hysteresis < 0.2:
            raise ValueError("DynamicResolution: hysteresis must be >= 0.2")
        self.current = self.current or self.full

    @property
    def minimum(self) -> int:
        return min(self.floor, self.full)

    def set_full(self, full: int) -> None:
        self.full = int(full)
        self.current = max(self.minimum, min(self.current or self.full, self.full))

    def update(self, frame_ms: float, resolution: int) -> int:
        """Report an interactive frame's time at `resolution`; returns the resolution for the next one."""
        if frame_ms <= 0:
            return self.current
        lo, hi = self.target_ms * (1 - self.hysteresis), self.target_ms * (1 + self.hysteresis)
        if lo <= frame_ms <= hi:
            return self.current
        # Cost ~ pixels: scale the side by sqrt(target / measured), damped.
        want = resolution * math.sqrt(self.target_ms / frame_ms)
        want = int(round(want / self.step) * self.step)
        self.current = max(self.minimum, min(self.full, want))
        return self.current
