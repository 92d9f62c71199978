"""Small imgui helpers shared by the panels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imgui_bundle import imgui

RED = imgui.ImVec4(1.0, 0.35, 0.35, 1.0)
GREEN = imgui.ImVec4(0.45, 0.9, 0.45, 1.0)
DIM = imgui.ImVec4(0.7, 0.7, 0.7, 1.0)
AMBER = imgui.ImVec4(1.0, 0.75, 0.2, 1.0)


def wrapped_text(text: str, color) -> None:
    """Coloured text wrapped at the window's edge (imgui.text_colored does not wrap)."""
    imgui.push_style_color(imgui.Col_.text, color)
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def error_text(text: str) -> None:
    wrapped_text(text, RED)


def combo(label: str, value: str, options, labels: dict | None = None) -> str:
    labels = labels or {}
    names = [labels.get(o, o) for o in options]
    idx = list(options).index(value) if value in options else 0
    changed, idx = imgui.combo(label, idx, names)
    return options[idx] if changed else value


def tooltip(text: str) -> None:
    if imgui.is_item_hovered():
        imgui.set_tooltip(text)


_FILE_DIALOGS: dict[str, bool] = {}


def file_dialogs_available() -> bool:
    """Whether the system file dialogs (portable-file-dialogs: zenity / kdialog) can be shown; asked once."""
    if "available" not in _FILE_DIALOGS:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            _FILE_DIALOGS["available"] = bool(pfd.settings.available())
        except Exception:
            _FILE_DIALOGS["available"] = False
    return _FILE_DIALOGS["available"]


NO_DIALOG = "no system file dialog (zenity / kdialog) found"


class DialogButton:
    """A button that opens a system file dialog (portable-file-dialogs), disabled with `no_dialog_note` as its
    tooltip where the system has none. The dialog runs beside the frame loop: `draw(start)` opens it at `start` on a
    click (`open_dialog(start)` returns pfd's open_file / select_folder object) and returns the chosen path on the
    frame it closes, else None."""

    def __init__(self, label: str, open_dialog: Callable[[str], Any], no_dialog_note: str):
        self.label, self.open_dialog, self.no_dialog_note = label, open_dialog, no_dialog_note
        self.pending = None  # the open dialog, polled each frame

    def draw(self, start: str) -> str | None:
        has_dialog = file_dialogs_available()
        imgui.begin_disabled(not has_dialog)
        if imgui.button(self.label):
            self.pending = self.open_dialog(start or ".")
        imgui.end_disabled()
        if not has_dialog:
            tooltip(f"{NO_DIALOG}: {self.no_dialog_note}")
        return self.poll()

    def poll(self) -> str | None:
        """The chosen path once the dialog has closed (its first file for open_file); None while it is open, when
        none is, or when it was cancelled."""
        if self.pending is None or not self.pending.ready():
            return None
        result, self.pending = self.pending.result(), None
        if isinstance(result, list):
            result = result[0] if result else ""
        return result or None
