"""Latent panel: seeds A and B, interpolation, truncation, animation, conditioning camera."""

from __future__ import annotations

import random

from imgui_bundle import imgui

from ..latent import COND_MODES, INTERP_MODES
from .widgets import combo, tooltip

TITLE = "Latent"
DOCK = "SideSpace"

_INTERP_LABELS = {"slerp_z": "slerp in z", "lerp_w": "lerp in w"}
_COND_LABELS = {"frontal": "frontal camera", "view": "same as view"}


def draw(s, scene) -> None:
    """s: Eg3dState; scene: Eg3dScene (the model's number of ws)."""
    imgui.set_next_item_width(120)
    _, s.seed_a = imgui.input_int("seed A", s.seed_a)
    imgui.same_line()
    if imgui.button("random##a"):
        s.seed_a = random.randrange(0, 2**31)
    imgui.set_next_item_width(120)
    _, s.seed_b = imgui.input_int("seed B", s.seed_b)
    imgui.same_line()
    if imgui.button("random##b"):
        s.seed_b = random.randrange(0, 2**31)
    s.seed_a, s.seed_b = max(0, s.seed_a), max(0, s.seed_b)
    _, s.t = imgui.slider_float("t (A -> B)", s.t, 0.0, 1.0)
    s.interp_mode = combo("interpolation", s.interp_mode, INTERP_MODES, _INTERP_LABELS)
    _, s.animate = imgui.checkbox("auto-animate t", s.animate)
    if s.animate:
        imgui.same_line()
        imgui.set_next_item_width(100)
        _, s.animate_speed = imgui.slider_float("speed", s.animate_speed, 0.02, 2.0)
    imgui.separator()
    _, s.psi = imgui.slider_float("truncation psi", s.psi, 0.0, 1.5)
    tooltip("psi = 0: every seed gives the average w (the same image)")
    _, s.cutoff = imgui.slider_int("truncation cutoff", s.cutoff, 0, scene.engine.num_ws)
    tooltip("truncate the first N ws only; 0 = all")
    s.cond = combo("conditioning", s.cond, COND_MODES, _COND_LABELS)
    tooltip("the camera label fed to the mapping network; 'same as view' re-synthesises the planes on camera moves")
