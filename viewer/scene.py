"""What the app needs from a scene (the EG3D generator, the DreamFusion object) and what the scenes share.

A scene owns its state (settings and orbit camera), its display (the last frame and its texture) and its actions;
the app only routes frames, forwards the camera's motion, and asks it to draw. Panels receive a scene's state and the
scene itself as their actions (imgui_bundle's demo_docking.py hands one AppState to each window the same way).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .generator_session import Frame
from .probes import Probes
from .state import ViewerState

__all__ = ["Scene", "Services", "ViewportImage", "CaptureUnavailable"]


class CaptureUnavailable(Exception):
    """The scene has nothing to capture yet (the message says why)."""


@dataclass
class Services:
    """What scenes share: the viewer state (timing, errors), the render and job workers, probes, and the app's
    scene switch and window focus."""

    state: ViewerState
    probes: Probes
    render_worker: object = None  # RenderWorker (set by the app once the scenes exist)
    jobs: object = None  # JobWorker
    set_scene: Callable[[str], None] = lambda name: None
    focus_window: Callable[[str], None] = lambda title: None
    _stamps: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_stamp(self) -> int:
        return next(self._stamps)


class Scene(Protocol):
    name: str  # eg3d | dreamfusion (Frame.source of its frames)
    label: str  # for the status line

    @property
    def state(self): ...  # its settings dataclass (with .camera)

    def update(self, now: float, moving: bool) -> None:
        """Turn the state into render requests (latest wins); `moving`: the camera moved within rest_ms."""

    def accept(self, frame: Frame) -> None:
        """A finished frame rendered for this scene."""

    def draw(self, draw_list, p0, p1) -> list[str]:
        """Draw the viewport image into the rectangle p0-p1 (GUI thread, GL); returns error lines to show over it."""

    def capture_source(self) -> tuple:
        """(renderer, spec, settings) for captures of what is on screen; raises CaptureUnavailable."""

    def status(self) -> str: ...

    def settled(self) -> bool:
        """No work in flight and the full-quality frame of the current state is on screen."""


class ViewportImage:
    """A scene's last frame: kept on screen until a newer one arrives, uploaded to a texture on the GUI thread."""

    def __init__(self):
        self.shown: Frame | None = None
        self.pending: Frame | None = None  # shown, not yet uploaded
        self.tex = None

    def show(self, frame: Frame) -> bool:
        """Take `frame` if it is newer than the one on screen (False: stale)."""
        if self.shown is not None and frame.stamp <= self.shown.stamp:
            return False
        self.shown = self.pending = frame
        return True

    def clear(self) -> None:
        self.shown = self.pending = None

    def sync(self) -> None:
        """Upload a pending frame (GUI thread)."""
        from .gl import Texture2D

        if self.tex is None:
            self.tex = Texture2D(nearest=False)
        if self.pending is not None:
            self.tex.upload(self.pending.rgba)
            self.pending = None

    def draw(self, draw_list, p0, p1, placeholder: str) -> bool:
        """Draw the frame, or a panel-coloured square with `placeholder` when there is none."""
        from imgui_bundle import imgui

        if self.shown is not None and self.tex is not None and self.tex.size != (0, 0):
            draw_list.add_image(imgui.ImTextureRef(self.tex.id), p0, p1)
            return True
        draw_list.add_rect_filled(p0, p1, imgui.get_color_u32(imgui.Col_.frame_bg))
        if placeholder:
            draw_list.add_text(imgui.ImVec2(p0.x + 8, p0.y + 8), imgui.get_color_u32(imgui.Col_.text), placeholder)
        return False
