"""Small imgui helpers shared by the panels."""

from __future__ import annotations

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
