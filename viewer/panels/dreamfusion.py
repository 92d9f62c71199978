"""DreamFusion panel: scene source, prompt and optimiser settings, prior folder, Start / Pause / Stop / Reset, the
optimisation's state and steps/s, and its error (red). The live loss plot is the Training panel (panels/training.py)."""

from __future__ import annotations

from imgui_bundle import imgui

from ..dreamfusion import GUIDANCE_LABELS, GUIDANCES, NO_PRIOR_MESSAGE, default_scale
from .widgets import AMBER, DIM, GREEN, DialogButton, combo, error_text, tooltip

TITLE = "DreamFusion"
DOCK = "SideSpace"


def _choose_prior_dialog(start: str):
    from imgui_bundle import portable_file_dialogs as pfd

    return pfd.select_folder("Choose a diffusion prior folder", start)


_choose_button = DialogButton("Choose folder...", _choose_prior_dialog, "type the folder's path")


def draw(s, scene) -> None:
    """s: DreamFusionState; scene: DreamFusionScene (start / pause / stop / reset, the session, scene switch)."""
    sess = scene.session
    worker = sess.worker if sess is not None else None

    imgui.text("viewport:")
    imgui.same_line()
    if imgui.radio_button("EG3D", not scene.on_screen):
        scene.show("eg3d")
    tooltip("show the EG3D generator (Model and Latent panels)")
    imgui.same_line()
    if imgui.radio_button("DreamFusion", scene.on_screen):
        scene.show("dreamfusion")
    tooltip("show the DreamFusion object (its own orbit camera)")
    imgui.separator()

    imgui.set_next_item_width(-110)
    _, s.prompt = imgui.input_text("prompt", s.prompt)
    imgui.set_next_item_width(-110)
    new = combo("guidance", s.guidance, GUIDANCES, GUIDANCE_LABELS)
    if new != s.guidance:
        s.guidance, s.scale = new, default_scale(new, s.prior_path)
    tooltip("SDS: DreamFusion's score distillation; CSD: classifier score only; VSD: ProlificDreamer (trains a LoRA)")
    imgui.set_next_item_width(120)
    _, s.scale = imgui.input_float("guidance scale", s.scale, 1.0, 10.0, "%.1f")
    s.scale = max(0.0, s.scale)
    imgui.set_next_item_width(120)
    _, s.steps = imgui.input_int("steps", s.steps, 100, 1000)
    s.steps = max(1, s.steps)
    imgui.set_next_item_width(120)
    _, s.lr = imgui.input_float("learning rate", s.lr, 0.0, 0.0, "%.4g")
    s.lr = min(1.0, max(1e-6, s.lr))
    _prior_row(s)
    if imgui.tree_node("advanced"):
        imgui.set_next_item_width(120)
        _, s.resolution = imgui.input_int("training px", s.resolution, 16, 32)
        s.resolution = 0 if s.resolution < 16 else min(512, s.resolution)
        tooltip("render size of the training views; 0: the prior's own resolution (at most 64)")
        imgui.set_next_item_width(120)
        _, s.seed = imgui.input_int("seed", s.seed)
        imgui.set_next_item_width(120)
        _, s.fps_cap = imgui.slider_float("GUI fps while training", s.fps_cap, 2.0, 60.0, "%.0f")
        tooltip("the viewer's frame-rate cap while the optimiser runs (it is lifted while you drag the camera)")
        imgui.tree_pop()

    running = worker is not None and worker.training
    imgui.begin_disabled(running)
    if imgui.button("Start"):
        scene.start()
    imgui.end_disabled()
    tooltip("start a new object, continue it after Stop, or resume after Pause")
    imgui.same_line()
    imgui.begin_disabled(not running)
    if imgui.button("Pause"):
        scene.pause()
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(worker is None or not worker.alive)
    if imgui.button("Stop"):
        scene.stop()
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(sess is None)
    if imgui.button("Reset"):
        scene.reset()
    imgui.end_disabled()
    tooltip("drop the object and its plot; the next Start uses the settings above")

    if sess is not None and not worker.error:  # one state at a time: the status, or the error below
        draw_status(sess)
    if s.note:
        imgui.push_style_color(imgui.Col_.text, AMBER)
        imgui.text_wrapped(s.note)
        imgui.pop_style_color()
    if sess is not None and worker.error:
        scene.services.probes.df_drawn_error = f"DreamFusion failed: {worker.error}"
        error_text(scene.services.probes.df_drawn_error)
    if scene.changed():
        imgui.text_colored(DIM, "changed settings apply after Reset")
    imgui.text_colored(DIM, "loss plot: the Training tab below")


def _prior_row(s) -> None:
    imgui.set_next_item_width(-110)
    _, s.prior_path = imgui.input_text("prior folder", s.prior_path)
    tooltip("a diffusion prior folder on disk (diffusers layout: model_index.json, unet/, text_encoder/, ...)")
    folder = _choose_button.draw(s.prior_path)
    if folder:
        s.prior_path = folder
    if not s.prior_path.strip():
        imgui.same_line()
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(AMBER, NO_PRIOR_MESSAGE)
        imgui.pop_text_wrap_pos()


def draw_status(sess) -> None:
    w = sess.worker
    state = w.state
    step, total = sess.step_count, w.total
    if state == "starting":
        imgui.text_wrapped("loading the prior and building the object...")
        return
    color = GREEN if state == "running" else DIM
    hold = " (holding: camera moving)" if state == "running" and w.holding else ""
    imgui.text_colored(color, f"{state}: step {step} / {total}, {w.steps_per_s:.1f} steps/s{hold}")
    imgui.progress_bar(step / max(1, total), imgui.ImVec2(-1, 0), f"{step} / {total}")
