"""The tristudio viewer: a hello_imgui runner with a docked Viewport and side panels (Model, Latent, DreamFusion,
Render, Capture, Training) over two scenes, the EG3D generator (eg3d_scene.py) and the DreamFusion object
(dreamfusion_scene.py), each owning its settings, orbit camera, and frames (scene.py: the interface).

Frame loop (GUI thread; the only thread that touches GL):
  1. route finished work from the render worker to the scene it was rendered for (frames, baked grids, errors),
  2. track the camera of the scene on screen (moving = changed within `rest_ms`) and let that scene request frames,
  3. draw the panels (each gets a state and its owner's actions, never the app) and the viewport: the canvas turns
     mouse gestures into camera moves, the scene draws its image, errors are written over it in red.
"""

from __future__ import annotations

import time

from imgui_bundle import hello_imgui, imgui

from .capture import CaptureActions
from .dreamfusion import is_dreamfusion_run, prior_folder
from .dreamfusion_scene import DreamFusionScene
from .eg3d_scene import Eg3dScene
from .generator_session import Frame, GeneratorSession
from .model import default_model, load_model
from .panels import PANELS
from .probes import Probes
from .scene import Services
from .state import SCENES, ViewerState
from .workers import BakeResult, JobWorker, RenderWorker, WorkerError

__all__ = ["ViewerApp"]


def _resolve_device(device: str) -> str:
    """auto: CUDA when torch sees a GPU (tri-planes then stay GPU-resident and torch renders there), else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: torch sees no CUDA device")
    return device


class ViewerApp:
    def __init__(
        self,
        engine: GeneratorSession | None = None,
        model_path: str | None = None,
        preset: str = "small",
        state: ViewerState | None = None,
        window_size: tuple[int, int] = (1280, 800),
        gl_resolution: int = 192,
        device: str = "auto",
        threads: int | None = None,
    ):
        from tristudio.core.threads import auto_threads

        self.state = state or ViewerState()
        self.window_size = window_size
        self.probes = Probes()
        # torch threads of the render and job workers: the idle cores but one (the GUI thread's)
        self.threads = int(threads or auto_threads(reserve=1))
        self._focus_requests: list[str] = []  # docked panels to bring to the front at the next frame
        sv = self.services = Services(
            self.state, self.probes, set_scene=self.set_scene, focus_window=self._focus_requests.append
        )
        if engine is None:
            engine = self._initial_engine(model_path, preset, _resolve_device(device))
        self.eg3d = Eg3dScene(sv, self.state.eg3d, engine, gl_resolution)
        self.dreamfusion = DreamFusionScene(sv, self.state.dreamfusion)
        self.eg3d.on_prior = self.dreamfusion.use_prior
        self.eg3d.on_run = self.dreamfusion.open_run
        sv.render_worker = RenderWorker(lambda: self.eg3d.engine, threads=self.threads)
        sv.jobs = JobWorker(threads=self.threads)
        self.captures = CaptureActions(self.state.capture, sv.jobs, lambda: self.scene, self.probes)
        if model_path and is_dreamfusion_run(model_path):  # `tristudio view RUN`: the DreamFusion scene shows it
            self.eg3d.open_model(model_path)
        self.worker_error = ""
        self.image_rect = (0.0, 0.0, 0.0, 0.0)  # x, y, w, h of the viewport image in window pixels
        self.dragging = False  # the viewport canvas is held with a mouse button
        self._last_camera_key = self.state.camera.key()
        self._camera_changed_at = -1e9
        self._last_frame_t: float | None = None
        self._own_implot = None
        self._closed = False

    def _initial_engine(self, model_path, preset, device) -> GeneratorSession:
        prior = prior_folder(model_path) if model_path else None
        if prior is not None:  # a diffusers folder: the DreamFusion prior (on screen); EG3D keeps the default model
            self.state.dreamfusion.prior_path = self.state.eg3d.prior_loaded = str(prior)
            self.state.scene = "dreamfusion"
            model_path = None
        if model_path and is_dreamfusion_run(model_path):  # opened by the DreamFusion scene (__init__)
            model_path = None
        if model_path:
            try:
                return GeneratorSession(load_model(model_path), name=str(model_path), device=device)
            except Exception as exc:  # open on the default model and say why in the Model panel
                self.state.eg3d.model_error = f"could not load {model_path}: {type(exc).__name__}: {exc}"
        G, name, banner = default_model(preset)
        return GeneratorSession(G, name=name, banner=banner, device=device)

    # ------------------------------------------------------------------ scenes
    @property
    def scene(self):
        """The scene on screen."""
        return self.dreamfusion if self.state.scene == "dreamfusion" else self.eg3d

    @property
    def render_worker(self) -> RenderWorker:
        return self.services.render_worker

    @property
    def jobs(self) -> JobWorker:
        return self.services.jobs

    def set_scene(self, name: str) -> None:
        if name not in SCENES:
            raise ValueError(f"unknown scene {name!r}")
        if name == self.state.scene:
            return
        self.state.scene = name
        self.scene.reset_requests()
        self._last_camera_key = self.state.camera.key()

    # ------------------------------------------------------------------ frame loop
    def update(self, now: float | None = None) -> None:
        """Steps 1 and 2 of the frame loop (no drawing)."""
        now = time.perf_counter() if now is None else now
        self._poll_results()
        cam_key = self.state.camera.key()
        if cam_key != self._last_camera_key:
            self._last_camera_key, self._camera_changed_at = cam_key, now
        moving = (now - self._camera_changed_at) * 1000 < self.state.rest_ms
        self.dreamfusion.camera_activity(self.dreamfusion.on_screen and (self.dragging or moving))
        self.eg3d.poll_loader()  # a model or prior opened from the Model panel arrives whatever is on screen
        self.scene.update(now, moving)

    def _poll_results(self) -> None:
        q = self.render_worker.results
        while not q.empty():
            item = q.get_nowait()
            if isinstance(item, Frame):
                if item.source != self.state.scene:
                    self.render_worker.dropped += 1  # rendered for the scene no longer on screen
                    continue
                self.worker_error = ""
                self.scene.accept(item)
            elif isinstance(item, WorkerError):
                self.worker_error = f"{item.where} worker: {item.message}"
                self.state.add_error(self.worker_error)
            elif isinstance(item, BakeResult):
                self.eg3d.accept_bake(item)

    def settled(self) -> bool:
        """No work in flight and the frame on screen is the full-quality render of the current state."""
        return self.scene.settled()

    def frame_cap(self) -> float:
        return self.dreamfusion.frame_cap(self.dragging)

    def _pre_new_frame(self) -> None:
        cap = self.frame_cap()
        now = time.perf_counter()
        if cap > 0 and self._last_frame_t is not None:
            wait = 1.0 / cap - (now - self._last_frame_t)
            if wait > 0:
                time.sleep(wait)
        self._last_frame_t = time.perf_counter()
        self.probes.new_frame()
        while self._focus_requests:
            _focus_window(self._focus_requests.pop(0))
        try:
            self.update()
        except Exception as exc:  # keep the app alive; say what went wrong
            self.worker_error = f"viewer: {type(exc).__name__}: {exc}"
            self.state.add_error(self.worker_error)

    # ------------------------------------------------------------------ windows
    def draw_viewport(self) -> None:
        io = imgui.get_io()
        avail = imgui.get_content_region_avail()
        side = max(16.0, min(avail.x, avail.y))
        pos = imgui.get_cursor_pos()
        imgui.set_cursor_pos(imgui.ImVec2(pos.x + (avail.x - side) / 2, pos.y))
        screen = imgui.get_cursor_screen_pos()
        self.image_rect = (screen.x, screen.y, side, side)
        imgui.invisible_button(
            "##canvas",
            imgui.ImVec2(side, side),
            imgui.ButtonFlags_.mouse_button_left | imgui.ButtonFlags_.mouse_button_right,
        )
        cam = self.state.camera
        hovered, active = imgui.is_item_hovered(), imgui.is_item_active()
        self.dragging = active
        if active and imgui.is_mouse_dragging(imgui.MouseButton_.left, 0.0):
            d = io.mouse_delta
            if d.x or d.y:
                cam.orbit(d.x, d.y, side)  # a full-width drag turns 180 deg
        if active and imgui.is_mouse_dragging(imgui.MouseButton_.right, 0.0):
            d = io.mouse_delta
            if d.x or d.y:
                cam.pan(d.x, d.y, side)
        if hovered and io.mouse_wheel:
            cam.zoom(io.mouse_wheel)
        if hovered and imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
            cam.reset()
        if imgui.is_window_focused(imgui.FocusedFlags_.root_and_child_windows) and imgui.is_key_pressed(imgui.Key.r):
            cam.reset()

        dl = imgui.get_window_draw_list()
        p0, p1 = imgui.ImVec2(screen.x, screen.y), imgui.ImVec2(screen.x + side, screen.y + side)
        errors = [e for e in [self.worker_error, *self.scene.draw(dl, p0, p1)] if e]
        y = p0.y + 8
        for e in errors:
            dl.add_text(imgui.ImVec2(p0.x + 8, y), imgui.get_color_u32(imgui.ImVec4(1, 0.3, 0.3, 1)), e)
            y += imgui.get_text_line_height_with_spacing()
        self.probes.drawn_errors = errors

    def status_text(self) -> str:
        fps = imgui.get_io().framerate
        busy = " | rendering" if self.render_worker.busy else ""
        return f"{fps:.0f} fps | {self.scene.label}: {self.scene.status()}{busy}"

    def show_status(self) -> None:
        imgui.text(self.status_text())
        banner = self.state.eg3d.banner
        if banner:
            imgui.same_line()
            imgui.text_colored(imgui.ImVec4(1.0, 0.75, 0.2, 1.0), f"| {banner}")

    def panel_args(self, title: str) -> tuple:
        """(state, actions) for a panel: what it shows and edits, and who acts on its buttons."""
        sc = self.scene
        return {
            "Model": (self.state.eg3d, self.eg3d),
            "Latent": (self.state.eg3d, self.eg3d),
            "DreamFusion": (self.state.dreamfusion, self.dreamfusion),
            "Render": (sc.state, sc),
            "Capture": (self.state.capture, self.captures),
            "Training": (self.state.dreamfusion, self.dreamfusion),
        }[title]

    # ------------------------------------------------------------------ runner
    def runner_params(self) -> hello_imgui.RunnerParams:
        rp = hello_imgui.RunnerParams()
        rp.app_window_params.window_title = "tristudio"
        rp.app_window_params.window_geometry.size = self.window_size
        rp.imgui_window_params.default_imgui_window_type = (
            hello_imgui.DefaultImGuiWindowType.provide_full_screen_dock_space
        )
        rp.imgui_window_params.show_status_bar = True
        rp.imgui_window_params.show_status_fps = False
        rp.imgui_window_params.show_menu_bar = False
        rp.fps_idling.enable_idling = False
        rp.ini_disable = True
        rp.callbacks.pre_new_frame = self._pre_new_frame
        rp.callbacks.post_init = self._post_init
        rp.callbacks.before_swap = self.captures.before_swap
        rp.callbacks.before_exit = self.close
        rp.callbacks.show_status = self.show_status

        split = hello_imgui.DockingSplit("MainDockSpace", "SideSpace", imgui.Dir.right, 0.34)
        split_low = hello_imgui.DockingSplit("SideSpace", "SideLow", imgui.Dir.down, 0.45)
        rp.docking_params.docking_splits = [split, split_low]
        vp = hello_imgui.DockableWindow("Viewport", "MainDockSpace", self.draw_viewport)
        vp.imgui_window_flags = imgui.WindowFlags_.no_scrollbar | imgui.WindowFlags_.no_scroll_with_mouse
        windows = [vp]
        for panel in PANELS:
            windows.append(
                hello_imgui.DockableWindow(panel.TITLE, panel.DOCK, lambda p=panel: p.draw(*self.panel_args(p.TITLE)))
            )
        rp.docking_params.dockable_windows = windows
        return rp

    def _post_init(self) -> None:
        self._install_drop_callback()
        self._ensure_implot()

    def _ensure_implot(self) -> None:
        """The DreamFusion loss plot needs an ImPlot context: use the runner's (immapp add-on) or make one."""
        from imgui_bundle import implot

        try:
            has = implot.get_current_context() is not None
        except Exception:
            has = False
        if not has:
            self._own_implot = implot.create_context()

    def _install_drop_callback(self) -> None:
        """Drag-and-drop of a model file onto the window (glfw drop callback on hello_imgui's own window)."""
        try:
            import glfw  # after imgui_bundle: uses the glfw library bundled with it
            from imgui_bundle.glfw_utils import glfw_window_hello_imgui

            def on_drop(_window, paths):
                if paths:
                    self.eg3d.open_model(paths[0])

            self._drop_cb = on_drop  # keep a reference
            glfw.set_drop_callback(glfw_window_hello_imgui(), on_drop)
        except Exception as exc:
            self.state.add_error(f"drag-and-drop unavailable: {exc}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.dreamfusion.close(10)
        self.render_worker.stop()
        job = self.jobs.current
        if job is not None and not job.done:
            job.cancel()
            self.jobs.wait(10)
        if self._own_implot is not None:
            from imgui_bundle import implot

            implot.destroy_context(self._own_implot)
            self._own_implot = None

    def run(self) -> None:
        hello_imgui.run(self.runner_params())


def _focus_window(title: str) -> None:
    """Bring a docked panel's tab to the front (the runner holds its own copies of the dockable windows)."""
    try:
        hello_imgui.get_runner_params().docking_params.focus_dockable_window(title)
    except Exception:  # no runner (unit use of the scenes)
        pass
