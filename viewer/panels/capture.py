"""Capture panel: save render, save GUI, orbit video, mesh export of the scene on screen (the EG3D generator or the
DreamFusion object); one background job at a time."""

from __future__ import annotations

from imgui_bundle import imgui

from ..state import DreamFusionState
from .widgets import DIM, GREEN, combo, error_text, tooltip, wrapped_text

TITLE = "Capture"
DOCK = "SideLow"


def draw(s, actions) -> None:
    """s: CaptureState; actions: CaptureActions (jobs on the scene on screen)."""
    busy = actions.jobs.running
    imgui.set_next_item_width(-90)
    _, s.capture_dir = imgui.input_text("folder", s.capture_dir)
    imgui.begin_disabled(busy)
    imgui.set_next_item_width(120)
    _, s.save_resolution = imgui.input_int("px##render", s.save_resolution)
    s.save_resolution = max(16, min(2048, s.save_resolution))
    imgui.same_line()
    if imgui.button("Save render"):
        actions.save_render()
    imgui.end_disabled()
    if imgui.button("Save GUI"):
        actions.save_gui()
    imgui.separator()
    imgui.begin_disabled(busy)
    imgui.set_next_item_width(120)
    _, s.video_frames = imgui.input_int("frames", s.video_frames)
    imgui.set_next_item_width(120)
    _, s.video_fps = imgui.input_int("fps", s.video_fps)
    imgui.set_next_item_width(120)
    _, s.video_resolution = imgui.input_int("px##video", s.video_resolution)
    s.video_frames, s.video_fps = max(1, s.video_frames), max(1, min(120, s.video_fps))
    s.video_resolution = max(16, min(2048, s.video_resolution))
    if imgui.button("Orbit video"):
        actions.orbit_video()
    imgui.separator()
    imgui.set_next_item_width(120)
    _, s.mesh_resolution = imgui.input_int("grid##mesh", s.mesh_resolution)
    s.mesh_resolution = max(16, min(256, s.mesh_resolution))
    imgui.set_next_item_width(120)
    scene = actions.scene().state  # the level is the scene's: DreamFusion's density sigma, EG3D's raw density
    if isinstance(scene, DreamFusionState):
        _, scene.mesh_level = imgui.input_float("density level", scene.mesh_level)
        scene.mesh_level = max(0.0, scene.mesh_level)
        tooltip("0 = automatic: 10, or half the peak density when the field is fainter")
    else:
        imgui.begin_disabled(scene.mesh_auto)
        _, scene.mesh_level = imgui.input_float("density level", scene.mesh_level)
        imgui.end_disabled()
        imgui.same_line()
        _, scene.mesh_auto = imgui.checkbox("auto##level", scene.mesh_auto)
        tooltip("auto: the raw density level whose silhouette matches the render's (opacity > 1/2)")
    imgui.set_next_item_width(120)
    s.mesh_format = combo("format", s.mesh_format, ("ply", "obj", "glb"))
    if imgui.button("Export mesh"):
        actions.export_mesh()
    imgui.end_disabled()
    job = actions.jobs.current
    if job is not None:
        imgui.separator()
        if not job.done:
            imgui.progress_bar(job.progress, imgui.ImVec2(-80, 0), job.message or job.name)
            imgui.same_line()
            if imgui.button("Cancel"):
                job.cancel()
        elif job.error:
            error_text(job.error)
        elif job.message:
            wrapped_text(job.message, GREEN if not job.cancelled else DIM)
    msg = s.message
    if msg is not None:  # wrapped at the panel's edge (a long path is not clipped)
        if msg.error:
            error_text(msg.text)
        else:
            wrapped_text(msg.text, GREEN)
