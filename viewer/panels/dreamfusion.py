"""DreamFusion panel (pluggable): shows the per-prompt optimiser's controls once tristudio.core.dreamfusion offers
its API (step(), render(camera), a stop flag and a progress queue); until then it says so."""

from __future__ import annotations

import importlib.util

from imgui_bundle import imgui

from .widgets import DIM

TITLE = "DreamFusion"
DOCK = "SideSpace"

API_MODULE = "tristudio.core.dreamfusion.optimize"


def available() -> bool:
    try:
        return importlib.util.find_spec(API_MODULE) is not None
    except (ImportError, ValueError):
        return False


def draw(app) -> None:
    if not available():
        imgui.text_wrapped("DreamFusion is not available in this build yet: the viewer shows its controls once "
                           f"{API_MODULE} (step(), render(camera), stop flag, progress queue) exists.")
        return
    imgui.text_colored(DIM, f"{API_MODULE} found; its panel is not wired up yet.")
