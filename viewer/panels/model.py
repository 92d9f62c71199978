"""Model panel (Eg3dState, Eg3dScene): which generator is on screen; open another (path field, file dialog,
drag-and-drop)."""

from __future__ import annotations

from imgui_bundle import imgui

from .widgets import DIM, DialogButton, error_text, tooltip

TITLE = "Model"
DOCK = "SideSpace"


def _open_model_dialog(start: str):
    from imgui_bundle import portable_file_dialogs as pfd

    filters = ["EG3D models", "*.pkl *.json *.safetensors", "diffusers folder (pick its model_index.json)"]
    return pfd.open_file("Open an EG3D model", start, [*filters, "model_index.json", "All files", "*"])


_open_button = DialogButton("Open...", _open_model_dialog, "type a path, or drop a file on the window")


def draw(s, scene) -> None:
    """s: Eg3dState; scene: Eg3dScene (open_model, engine)."""
    imgui.text_wrapped(f"model: {s.model_name or '?'}")
    G = scene.engine.G
    imgui.text_colored(
        DIM,
        f"z {G.z_dim}, w {G.w_dim}, {G.num_ws} ws, planes 3x{G.plane_channels}x"
        f"{G.plane_resolution}^2, output {G.img_resolution} px",
    )
    if s.banner:
        imgui.text_colored(imgui.ImVec4(1.0, 0.75, 0.2, 1.0), s.banner)
    imgui.separator()
    imgui.set_next_item_width(-70)
    _, s.model_path = imgui.input_text("##path", s.model_path)
    imgui.same_line()
    if imgui.button("Load"):
        scene.open_model(s.model_path)
    tooltip(
        "load the model at this path: an official EG3D .pkl, a tristudio model folder, or a diffusers folder "
        "(model_index.json: becomes the DreamFusion panel's prior)"
    )
    chosen = _open_button.draw(s.model_path)
    imgui.same_line()
    imgui.text_colored(DIM, "or drop a file on the window")
    if chosen:
        if chosen.endswith("model_index.json"):  # a diffusers folder, chosen through its index file
            from pathlib import Path

            chosen = str(Path(chosen).parent)
        s.model_path = chosen
        scene.open_model(chosen)
    if s.prior_loaded:
        imgui.text_colored(DIM, f"diffusion prior: {s.prior_loaded} (DreamFusion panel)")
    if s.model_error:  # one state at a time: the error, or the loading note
        error_text(s.model_error)
    elif s.model_loading:
        imgui.text("loading...")
