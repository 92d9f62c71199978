"""Render panel: output, neural resolution, samples per ray, background, quality, camera."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from ..dreamfusion import SHOW_MODES
from ..images import BACKGROUNDS, OUTPUT_LABELS, OUTPUTS
from ..state import DreamFusionState
from .widgets import DIM, combo, error_text, tooltip

TITLE = "Render"
DOCK = "SideLow"

_SHOW_LABELS = {
    "shaded": "shaded (light at the camera)",
    "albedo": "albedo",
    "textureless": "textureless (geometry)",
    "depth": "depth",
    "normals": "normals",
    "opacity": "opacity",
}


def draw(s, scene) -> None:
    """s: the on-screen scene's state (Eg3dState or DreamFusionState); scene: that scene."""
    if isinstance(s, DreamFusionState):
        _draw_dreamfusion(s)
    else:
        _draw_eg3d(s, scene)
    _draw_camera(s.camera)


def _draw_dreamfusion(s) -> None:
    imgui.text_colored(DIM, "scene: the DreamFusion object")
    s.show = combo("show", s.show, SHOW_MODES, _SHOW_LABELS)
    _, s.view_resolution = imgui.slider_int("view resolution", s.view_resolution, 32, 512)
    tooltip("rays per side for the viewport at rest (smaller while the camera moves)")
    _, s.refresh_s = imgui.slider_float("refresh while training (s)", s.refresh_s, 0.1, 5.0, "%.1f")
    tooltip("re-render the view from the latest weights at most this often while the optimiser runs")


def _draw_eg3d(s, scene) -> None:
    s.output = combo("output", s.output, OUTPUTS, OUTPUT_LABELS)
    _, s.resolution = imgui.slider_int("neural resolution", s.resolution, 16, 512)
    tooltip("rays per side for the volume render (the super-resolved image has the model's own size)")
    _, s.samples = imgui.slider_int("samples per ray", s.samples, 4, 128)
    tooltip("coarse samples per ray; as many importance samples again")
    s.background = combo("background", s.background, BACKGROUNDS)
    s.quality = combo(
        "quality",
        s.quality,
        ("interactive", "full"),
        {"interactive": "interactive (fast while moving)", "full": "full (every frame exact)"},
    )
    if s.quality == "interactive":
        s.fast_path = combo(
            "while moving",
            s.fast_path,
            ("grid", "torch"),
            {"grid": "GL ray-march of a baked grid", "torch": "torch at lower resolution"},
        )
        _, s.target_ms = imgui.slider_float("target frame ms", s.target_ms, 20.0, 500.0)
        if s.fast_path == "grid":
            _, s.grid_resolution = imgui.slider_int("grid resolution", s.grid_resolution, 32, 160)
            rm = scene.raymarcher
            if scene.gl_error:
                error_text(scene.gl_error)
            elif scene.grid_ready():
                imgui.text_colored(DIM, f"grid {rm.grid_resolution}^3 baked in {scene.bake_ms:.0f} ms")
            else:
                progress = scene.services.render_worker.bake_progress
                imgui.text_colored(DIM, f"baking grid... {100 * progress:.0f}%")
        else:
            imgui.text_colored(DIM, f"interactive resolution {scene.dynres.current} px (floor {scene.dynres.minimum})")


def _draw_camera(cam) -> None:
    imgui.separator()
    yaw_deg, pitch_deg = math.degrees(cam.yaw), math.degrees(cam.pitch)
    ch, yaw_deg = imgui.slider_float("yaw", yaw_deg, -180.0, 180.0)
    if ch:
        cam.yaw = math.radians(yaw_deg)
    ch, pitch_deg = imgui.slider_float("pitch", pitch_deg, -85.0, 85.0)
    if ch:
        cam.pitch = math.radians(pitch_deg)
    lo, hi = cam.radius_range
    _, radius = imgui.slider_float("radius", cam.radius, lo, hi)
    cam.radius = min(hi, max(lo, radius))  # a typed value (ctrl+click) too
    tooltip("distance to the pivot, within the range where the model renders")
    _, cam.fov_deg = imgui.slider_float("fov (deg)", cam.fov_deg, 5.0, 60.0)
    if imgui.button("reset camera (R)"):
        cam.reset()
    imgui.push_style_color(imgui.Col_.text, DIM)
    imgui.text_wrapped("left-drag orbit (full width = 180 deg), right-drag pan, wheel zoom, double-click reset")
    imgui.pop_style_color()
