"""DreamFusion panel: scene source, prompt and optimiser settings, prior folder, Start / Pause / Stop / Reset, the
optimisation's state and steps/s, and its error (red). The live loss plot is the Training panel (panels/training.py)."""

from __future__ import annotations

from imgui_bundle import imgui

from ..dreamfusion import GUIDANCE_LABELS, GUIDANCES, NO_PRIOR_MESSAGE, default_scale
from .widgets import AMBER, DIM, GREEN, combo, error_text, tooltip

TITLE = "DreamFusion"
DOCK = "SideSpace"

_dialog = {"pending": None, "available": None}


def _dialog_available() -> bool:
    if _dialog["available"] is None:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            _dialog["available"] = bool(pfd.settings.available())
        except Exception:
            _dialog["available"] = False
    return _dialog["available"]


def draw(app) -> None:
    s = app.state
    sess = app.df_session
    worker = sess.worker if sess is not None else None

    imgui.text("viewport:")
    imgui.same_line()
    if imgui.radio_button("EG3D", s.scene == "eg3d"):
        app.set_scene("eg3d")
    tooltip("show the EG3D generator (Model and Latent panels)")
    imgui.same_line()
    if imgui.radio_button("DreamFusion", s.scene == "dreamfusion"):
        app.set_scene("dreamfusion")
    tooltip("show the DreamFusion object (its own orbit camera)")
    imgui.separator()

    imgui.set_next_item_width(-110)
    _, s.df_prompt = imgui.input_text("prompt", s.df_prompt)
    imgui.set_next_item_width(-110)
    new = combo("guidance", s.df_guidance, GUIDANCES, GUIDANCE_LABELS)
    if new != s.df_guidance:
        s.df_guidance, s.df_scale = new, default_scale(new, s.df_prior_path)
    tooltip("SDS: DreamFusion's score distillation; CSD: classifier score only; VSD: ProlificDreamer (trains a LoRA)")
    imgui.set_next_item_width(120)
    _, s.df_scale = imgui.input_float("guidance scale", s.df_scale, 1.0, 10.0, "%.1f")
    s.df_scale = max(0.0, s.df_scale)
    imgui.set_next_item_width(120)
    _, s.df_steps = imgui.input_int("steps", s.df_steps, 100, 1000)
    s.df_steps = max(1, s.df_steps)
    imgui.set_next_item_width(120)
    _, s.df_lr = imgui.input_float("learning rate", s.df_lr, 0.0, 0.0, "%.4g")
    s.df_lr = min(1.0, max(1e-6, s.df_lr))
    _prior_row(app)
    if imgui.tree_node("advanced"):
        imgui.set_next_item_width(120)
        _, s.df_resolution = imgui.input_int("training px", s.df_resolution, 16, 32)
        s.df_resolution = 0 if s.df_resolution < 16 else min(512, s.df_resolution)
        tooltip("render size of the training views; 0: the prior's own resolution (at most 64)")
        imgui.set_next_item_width(120)
        _, s.df_seed = imgui.input_int("seed", s.df_seed)
        imgui.set_next_item_width(120)
        _, s.df_fps_cap = imgui.slider_float("GUI fps while training", s.df_fps_cap, 2.0, 60.0, "%.0f")
        tooltip("the viewer's frame-rate cap while the optimiser runs (it is lifted while you drag the camera)")
        imgui.tree_pop()

    running = worker is not None and worker.training
    imgui.begin_disabled(running)
    if imgui.button("Start"):
        app.df_start()
    imgui.end_disabled()
    tooltip("start a new object, continue it after Stop, or resume after Pause")
    imgui.same_line()
    imgui.begin_disabled(not running)
    if imgui.button("Pause"):
        app.df_pause()
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(worker is None or not worker.alive)
    if imgui.button("Stop"):
        app.df_stop()
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(sess is None)
    if imgui.button("Reset"):
        app.df_reset()
    imgui.end_disabled()
    tooltip("drop the object and its plot; the next Start uses the settings above")

    if sess is not None:
        draw_status(app, sess)
    if s.df_note:
        imgui.push_style_color(imgui.Col_.text, AMBER)
        imgui.text_wrapped(s.df_note)
        imgui.pop_style_color()
    if sess is not None and worker.error:
        app.df_drawn_error = f"DreamFusion failed: {worker.error}"
        error_text(app.df_drawn_error)
    if app.df_changed():
        imgui.text_colored(DIM, "changed settings apply after Reset")
    imgui.text_colored(DIM, "loss plot: the Training tab below")


def _prior_row(app) -> None:
    s = app.state
    imgui.set_next_item_width(-110)
    _, s.df_prior_path = imgui.input_text("prior folder", s.df_prior_path)
    tooltip("a diffusion prior folder on disk (diffusers layout: model_index.json, unet/, text_encoder/, ...)")
    has_dialog = _dialog_available()
    imgui.begin_disabled(not has_dialog)
    if imgui.button("Choose folder..."):
        from imgui_bundle import portable_file_dialogs as pfd

        _dialog["pending"] = pfd.select_folder("Choose a diffusion prior folder", s.df_prior_path or ".")
    imgui.end_disabled()
    if not has_dialog:
        tooltip("no system file dialog (zenity / kdialog) found: type the folder's path")
    pending = _dialog["pending"]
    if pending is not None and pending.ready():
        _dialog["pending"] = None
        folder = pending.result()
        if folder:
            s.df_prior_path = folder
    if not s.df_prior_path.strip():
        imgui.same_line()
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(AMBER, NO_PRIOR_MESSAGE)
        imgui.pop_text_wrap_pos()


def draw_status(app, sess) -> None:
    w = sess.worker
    state = w.state
    step, total = sess.step_count, w.total
    if state == "starting":
        imgui.text("loading the prior and building the object...")
        return
    color = GREEN if state == "running" else DIM
    hold = " (holding: camera moving)" if state == "running" and w.holding else ""
    imgui.text_colored(color, f"{state}: step {step} / {total}, {w.steps_per_s:.1f} steps/s{hold}")
    imgui.progress_bar(step / max(1, total), imgui.ImVec2(-1, 0), f"{step} / {total}")
