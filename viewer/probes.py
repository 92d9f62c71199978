"""Counters and read-backs the tests and benchmarks look at; the app and panels write them, nothing reads them back
to decide anything. Kept out of the scenes' state so what the viewer does and what a test observes stay apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Probes"]


@dataclass
class Probes:
    frames: int = 0  # GUI frames run
    gl_frames: int = 0  # viewport frames drawn by the GL grid path
    holds: int = 0  # frames in which the optimiser was told to hold (camera moving)
    drawn_errors: list[str] = field(default_factory=list)  # error lines drawn over the viewport in the last frame
    df_plotted: int = 0  # points in the DreamFusion loss plot drawn in the last frame
    df_drawn_error: str = ""  # the DreamFusion error drawn in the DreamFusion panel in the last frame
    keep_gl_readback: bool = False  # keep the last GL frame as numpy (slow: a glReadPixels per frame)
    last_gl_image: tuple | None = None  # (camera key, (H, W, 4) uint8)
    gui_shots: list[Path] = field(default_factory=list)  # windows saved by "Save GUI"

    def new_frame(self) -> None:
        """Clear what the panels set again while drawing the next frame."""
        self.frames += 1
        self.df_plotted, self.df_drawn_error = 0, ""
