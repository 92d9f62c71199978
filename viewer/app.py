"""The tristudio viewer: a hello_imgui runner with a docked Viewport and side panels (Model, Latent, Render, Capture,
DreamFusion).

Frame loop (GUI thread; the only thread that touches GL):
  1. take finished work from the render worker (frames newer than the one shown; baked grids; errors),
  2. turn the state (latent, camera, render settings) into requests: latest request wins; while the camera moves the
     fast path draws the baked grid with the GL ray-marcher (or asks torch for a reduced-resolution frame, steered
     by DynamicResolution); once the camera has rested for `rest_ms`, one full-quality torch frame replaces it,
  3. draw the panels and the viewport image (fit to the window, aspect kept).

Scene source: the viewport shows the EG3D generator or the DreamFusion object (state.scene; each has its own orbit
camera). The DreamFusion optimisation runs in a TrainingWorker thread; the view re-renders from the latest weights
(at most every `df_refresh_s` while training, at once when the camera moves). While it trains the GUI caps its frame
rate (`df_fps_cap`) so the optimiser gets the CPU, and while the camera moves the optimiser holds (sleeps) so the
orbit stays smooth.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from imgui_bundle import hello_imgui, imgui

from .dreamfusion import (
    DFSpec,
    DreamFusionSession,
    DreamFusionSettings,
    default_prior_path,
    default_scale,
    dreamfusion_camera,
)
from .dynres import DynamicResolution
from .engine import Engine, Frame, RenderSettings
from .model import default_model, load_model
from .panels import PANELS
from .state import Message, ViewerState
from .workers import BakeResult, Job, JobWorker, RenderRequest, RenderWorker, WorkerError

__all__ = ["ViewerApp"]


def _resolve_device(device: str) -> str:
    """auto: CUDA when torch sees a GPU (tri-planes then stay GPU-resident and torch renders there), else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: torch sees no CUDA device")
    return device


_GL_MODES = {"final": 0, "raw": 0, "normals": 0, "depth": 1, "opacity": 2}
_BG_RGB = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5)}


class ViewerApp:
    def __init__(
        self,
        engine: Engine | None = None,
        model_path: str | None = None,
        preset: str = "small",
        state: ViewerState | None = None,
        window_size: tuple[int, int] = (1280, 800),
        gl_resolution: int = 192,
        device: str = "auto",
    ):
        self.state = state or ViewerState()
        self.device = _resolve_device(device)
        self.window_size = window_size
        self.gl_resolution = gl_resolution
        if engine is None:
            engine = self._initial_engine(model_path, preset)
        self.engine = engine
        self.state.banner = engine.banner
        self.state.model_name = engine.name
        self._reset_render_defaults(keep=True)
        self.render_worker = RenderWorker(lambda: self.engine)
        self.jobs = JobWorker()
        self.dynres = DynamicResolution(full=self.full_resolution, target_ms=self.state.target_ms)
        # Display state
        self.shown: Frame | None = None
        self.shown_kind = "none"  # torch | gl | none
        self.tex = None
        self.raymarcher = None
        self.gl_error = ""
        self.worker_error = ""
        self.drawn_errors: list[str] = []  # error lines drawn in the last frame (tests read this)
        self.stamp = 0
        self.last_full_key = None
        self.last_interactive_key = None
        self.last_camera_key = self.state.camera.key()
        self.camera_changed_at = -1e9
        self.gl_frame_ms = 0.0
        self.gl_frames = 0  # viewport frames drawn by the GL grid path
        self.keep_gl_readback = False  # tests: keep the last GL frame as numpy
        self.last_gl_image = None
        self.bake_ms = 0.0
        self._pending_upload = None
        self._pending_grid = None
        self.image_rect = (0.0, 0.0, 0.0, 0.0)  # x, y, w, h of the viewport image in window pixels
        self.gui_shot_request: Path | None = None
        self.gui_shot_done: list[Path] = []
        self._frame_times: list[float] = []
        self._anim_t0 = time.perf_counter()
        self._loader: threading.Thread | None = None
        self._loaded = None  # (G, name) or exception from the loader thread
        self._closed = False
        # DreamFusion
        if not self.state.df_prior_path:
            self.state.df_prior_path = default_prior_path()
        if self.state.df_scale is None:
            self.state.df_scale = default_scale(self.state.df_guidance, self.state.df_prior_path)
        self.df_session: DreamFusionSession | None = None
        self.df_make = None  # tests: settings -> DreamFusion object (default: load the prior, build the object)
        self.df_dynres = DynamicResolution(
            full=int(self.state.df_view_resolution), target_ms=self.state.target_ms, floor=32
        )
        self._df_last = (None, None)  # (view key, step) of the last DreamFusion request
        self._df_submit_t = 0.0
        self._df_render_ms = 0.0  # the last full-size DreamFusion view's render time
        self.df_plotted = 0  # points in the loss plot drawn last frame (tests read this)
        self.df_drawn_error = ""  # the DreamFusion error drawn last frame (tests read this)
        self.dragging = False  # the viewport canvas is held with a mouse button
        self.holds = 0  # frames in which the optimiser was told to hold (camera moving)
        self.frames = 0  # GUI frames run
        self._last_frame_t: float | None = None
        self._own_implot = None

    # ------------------------------------------------------------------ model
    def _initial_engine(self, model_path, preset) -> Engine:
        if model_path and (Path(str(model_path)).expanduser() / "model_index.json").is_file():
            # a diffusers folder: the DreamFusion prior; the EG3D scene keeps the default model
            self.state.df_prior_path = self.state.prior_loaded = str(Path(str(model_path)).expanduser())
            model_path = None
        if model_path:
            try:
                return Engine(load_model(model_path), name=str(model_path), device=self.device)
            except Exception as exc:  # open on the random model and say why in the Model panel
                self.state.model_error = f"could not load {model_path}: {type(exc).__name__}: {exc}"
        G, name, banner = default_model(preset)
        return Engine(G, name=name, banner=banner, device=self.device)

    def _reset_render_defaults(self, keep: bool = False) -> None:
        """The model's own neural resolution and samples (keep=True: only where the state has none)."""
        if not (keep and self.state.resolution):
            self.state.resolution = self.engine.default_resolution
        if not (keep and self.state.samples):
            self.state.samples = self.engine.default_samples
        if self.state.cutoff > self.engine.num_ws:
            self.state.cutoff = 0

    @property
    def full_resolution(self) -> int:
        return int(self.state.resolution or self.engine.default_resolution)

    def open_model(self, path: str) -> None:
        """Load in a thread; the result (or the error, in red in the Model panel) is picked up by the frame loop."""
        if self._loader is not None and self._loader.is_alive():
            self.state.model_error = "a model is still loading"
            return
        self.state.model_path = str(path)
        self.state.model_error = ""
        self.state.model_loading = True
        folder = Path(str(path).strip()).expanduser()
        is_prior = (folder / "model_index.json").is_file()

        def work():
            try:
                if is_prior:  # a diffusers folder: the DreamFusion panel's prior (loaded here to check it, cached)
                    from .dreamfusion import load_prior_cached

                    load_prior_cached(str(folder))
                    self._loaded = ("prior", str(folder))
                else:
                    self._loaded = (load_model(path), str(path))
            except Exception as exc:
                self._loaded = exc

        self._loader = threading.Thread(target=work, name="tristudio-load", daemon=True)
        self._loader.start()

    def _poll_loader(self) -> None:
        if self._loaded is None:
            return
        loaded, self._loaded = self._loaded, None
        self.state.model_loading = False
        if isinstance(loaded, Exception):
            self.state.model_error = f"could not load {self.state.model_path}: {type(loaded).__name__}: {loaded}"
            return
        G, name = loaded
        if isinstance(G, str) and G == "prior":
            self.state.df_prior_path = name
            self.state.prior_loaded = name
            self.state.df_scale = default_scale(self.state.df_guidance, name)
            self.set_scene("dreamfusion")
            return
        self.engine.set_generator(G, name=name, banner="")
        self.state.banner, self.state.model_name, self.state.model_error = "", name, ""
        self._reset_render_defaults()
        self.last_full_key = None

    # ------------------------------------------------------------------ requests
    def view_label(self):
        return tuple(float(v) for v in self.state.camera.cameras().label()[0]) if self.state.cond == "view" else None

    def settings(self) -> RenderSettings:
        s = self.state
        return RenderSettings(
            output=s.output, resolution=int(s.resolution), samples=int(s.samples), background=s.background
        )

    def _submit(self, spec, settings, resolution, full: bool) -> None:
        self.stamp += 1
        self.render_worker.submit(RenderRequest(self.stamp, spec, self.state.camera.copy(), settings, resolution, full))

    def _grid_key(self, spec):
        return (spec, int(self.state.grid_resolution), self.engine.generation)

    def _grid_ready(self, spec) -> bool:
        return self.raymarcher is not None and self.raymarcher.grid_key == self._grid_key(spec)

    def update(self, now: float | None = None) -> None:
        """Steps 1 and 2 of the frame loop (no drawing)."""
        now = time.perf_counter() if now is None else now
        s = self.state
        self._poll_loader()
        self._poll_results()
        if s.animate:
            phase = ((now - self._anim_t0) * s.animate_speed) % 2.0
            s.t = phase if phase <= 1.0 else 2.0 - phase
        cam_key = s.camera.key()
        if cam_key != self.last_camera_key:
            self.last_camera_key = cam_key
            self.camera_changed_at = now
        moving = (now - self.camera_changed_at) * 1000 < s.rest_ms
        sess = self.df_session
        if sess is not None and sess.worker.alive and (self.dragging or moving):
            sess.worker.hold(0.25)  # the optimiser sleeps while the camera moves
            self.holds += 1
        if s.scene == "dreamfusion":
            self._update_dreamfusion(now, moving, cam_key)
            return
        spec = s.latent_spec(self.view_label())
        settings = self.settings()
        self.dynres.target_ms = s.target_ms
        if self.dynres.full != self.full_resolution:
            self.dynres.set_full(self.full_resolution)
        full_key = (spec, settings, cam_key, self.engine.generation)
        use_grid = s.quality == "interactive" and s.fast_path == "grid" and self.gl_error == ""
        if use_grid and s.cond == "frontal":
            self.render_worker.want_bake(spec, s.grid_resolution, self.engine.generation)
        if full_key == self.last_full_key:
            return
        if s.quality == "full" or not moving:
            self.last_full_key = full_key
            self._submit(spec, settings, None, True)
            return
        # The camera is moving (interactive quality): the viewport draws the baked grid when it is ready for this
        # latent, else torch renders at the dynamic resolution.
        if use_grid and self._grid_ready(spec):
            return
        if full_key != self.last_interactive_key:
            self.last_interactive_key = full_key
            self._submit(spec, settings, self.dynres.current, False)

    def _update_dreamfusion(self, now: float, moving: bool, cam_key) -> None:
        """DreamFusion requests: at once when the camera or the display mode changes (reduced size while moving);
        for new weights, when the render worker is free and `df_refresh_s` has passed."""
        s, sess = self.state, self.df_session
        if sess is None or sess.df is None:
            return
        if self.df_dynres.full != int(s.df_view_resolution):
            self.df_dynres.set_full(int(s.df_view_resolution))
        sess.view_resolution = int(s.df_view_resolution)
        res = self.df_dynres.current if moving else int(s.df_view_resolution)
        view_key = (sess.ident, s.df_show, cam_key, res, not moving)
        step = sess.step_count
        last_key, last_step = self._df_last
        if view_key == last_key:
            if moving or step == last_step or not self.render_worker.idle:
                return
            # while training, at most every df_refresh_s, and at most a third of the time spent rendering
            interval = max(s.df_refresh_s, 2e-3 * self._df_render_ms) if sess.worker.training else 0.0
            if now - self._df_submit_t < interval:
                return
        self._df_last = (view_key, step)
        self._df_submit_t = now
        self.stamp += 1
        self.render_worker.submit(
            RenderRequest(
                self.stamp,
                DFSpec(sess.ident, step, s.df_show),
                s.camera.copy(),
                None,
                res,
                not moving,
                source=sess.view,
            )
        )

    def _poll_results(self) -> None:
        q = self.render_worker.results
        while not q.empty():
            item = q.get_nowait()
            if isinstance(item, Frame):
                if item.source != self.state.scene:
                    self.render_worker.dropped += 1  # rendered for the scene no longer on screen
                    continue
                if not item.full:
                    (self.df_dynres if item.source == "dreamfusion" else self.dynres).update(item.ms, item.resolution)
                elif item.source == "dreamfusion":
                    self._df_render_ms = item.ms
                if self.shown is None or item.stamp > self.shown.stamp:
                    self._show_frame(item)
                else:
                    self.render_worker.dropped += 1  # stale: an newer frame is already on screen
            elif isinstance(item, WorkerError):
                self.worker_error = f"{item.where} worker: {item.message}"
                self._add_error(self.worker_error)
            elif isinstance(item, BakeResult):
                self._pending_grid = item

    def _show_frame(self, frame: Frame) -> None:
        self.shown = frame
        self.worker_error = ""
        self._pending_upload = frame

    def _add_error(self, text: str) -> None:
        self.state.errors.append(text)
        del self.state.errors[:-5]

    # ------------------------------------------------------------------ GL (GUI thread)
    def _gl_sync(self) -> None:
        from .gl import GridRaymarcher, Texture2D

        if self.tex is None:
            self.tex = Texture2D(nearest=False)
        up = self._pending_upload
        if up is not None:
            self.tex.upload(up.rgba)
            self.shown_kind = "torch"
            self._pending_upload = None
        grid = self._pending_grid
        if grid is not None:
            self._pending_grid = None
            if grid.generation == self.engine.generation:
                try:
                    if self.raymarcher is None:
                        self.raymarcher = GridRaymarcher()
                    self.raymarcher.upload_grid(grid.grid, (grid.spec, grid.resolution, grid.generation))
                    self.bake_ms = grid.ms
                except Exception as exc:
                    self.gl_error = f"GL grid path disabled: {type(exc).__name__}: {exc}"
                    self._add_error(self.gl_error)

    def _gl_background(self) -> tuple[float, float, float]:
        if self.state.background == "model":
            return (1.0, 1.0, 1.0) if self.engine.white_back else (0.0, 0.0, 0.0)
        return _BG_RGB[self.state.background]

    def _draw_grid_if_moving(self) -> bool:
        """Draw the baked grid for the current camera when the torch frame on screen is for another camera."""
        s = self.state
        if s.scene != "eg3d" or s.quality != "interactive" or s.fast_path != "grid" or self.gl_error:
            return False
        spec = s.latent_spec(self.view_label())
        if not self._grid_ready(spec):
            return False
        if self.shown is not None and self.shown.camera_key == s.camera.key() and self.shown.latent == spec:
            return False
        rk = self.engine.G.rendering_kwargs
        t0 = time.perf_counter()
        try:
            self.raymarcher.draw(
                s.camera,
                (self.gl_resolution, self.gl_resolution),
                n_samples=2 * int(s.samples or 48),
                ray_start=float(rk["ray_start"]),
                ray_end=float(rk["ray_end"]),
                box_warp=float(rk["box_warp"]),
                mode=_GL_MODES[s.output],
                background=self._gl_background(),
                depth_range=(float(rk["ray_start"]), float(rk["ray_end"])),
            )
        except Exception as exc:
            self.gl_error = f"GL grid path disabled: {type(exc).__name__}: {exc}"
            self._add_error(self.gl_error)
            return False
        self.gl_frame_ms = (time.perf_counter() - t0) * 1000
        self.shown_kind = "gl"
        self.gl_frames += 1
        if self.keep_gl_readback:
            self.last_gl_image = (s.camera.key(), self.raymarcher.read())
        return True

    # ------------------------------------------------------------------ capture actions (GUI thread)
    def _start_job(self, name: str, fn) -> bool:
        if self.jobs.running:
            self.state.capture_message = Message("another capture job is running", error=True)
            return False
        return self.jobs.start(Job(name, fn))

    def _capture_source(self):
        """(renderer, spec, settings) for captures of the scene on screen, or None (no DreamFusion object yet)."""
        s = self.state
        if s.scene == "dreamfusion":
            sess = self.df_session
            if sess is None or sess.df is None:
                self.state.capture_message = Message(
                    "no DreamFusion object yet: press Start in the DreamFusion panel", error=True
                )
                return None
            return sess.view, DFSpec(sess.ident, sess.step_count, s.df_show), None
        return self.engine, s.latent_spec(self.view_label()), self.settings()

    def save_render(self) -> Path | None:
        from .capture import save_render

        s = self.state
        src = self._capture_source()
        if src is None:
            return None
        source, spec, settings = src
        path = s.capture_path("render", "png")
        cam = s.camera.copy()
        size = int(s.save_resolution)
        self._start_job("save render", lambda job: save_render(job, source, spec, cam, settings, size, path))
        return path

    def save_gui(self) -> Path:
        path = self.state.capture_path("gui", "png")
        self.gui_shot_request = path
        return path

    def orbit_video(self) -> Path | None:
        from .capture import orbit_video

        s = self.state
        src = self._capture_source()
        if src is None:
            return None
        source, spec, settings = src
        path = s.capture_path("orbit", "mp4")
        cam = s.camera.copy()
        frames, fps, size = int(s.video_frames), int(s.video_fps), int(s.video_resolution)
        self._start_job(
            "orbit video", lambda job: orbit_video(job, source, spec, cam, settings, frames, fps, size, path)
        )
        return path

    def export_mesh(self) -> Path | None:
        from .capture import export_mesh

        s = self.state
        if s.scene == "dreamfusion":
            from .dreamfusion import export_mesh as export_df_mesh

            if self._capture_source() is None:
                return None
            sess, res = self.df_session, int(s.mesh_resolution)
            level = float(s.df_mesh_level) if s.df_mesh_level > 0 else None  # 0: the engine's automatic level
            path = s.capture_path("mesh", s.mesh_format)
            self._start_job("mesh export", lambda job: export_df_mesh(job, sess, res, level, path))
            return path
        path = s.capture_path("mesh", s.mesh_format)
        spec = s.latent_spec(self.view_label())
        res, level = int(s.mesh_resolution), float(s.mesh_level)
        self._start_job("mesh export", lambda job: export_mesh(job, self.engine, spec, res, level, path))
        return path

    def _before_swap(self) -> None:
        if self.gui_shot_request is None:
            return
        from .capture import save_png
        from .gl import read_framebuffer

        path, self.gui_shot_request = self.gui_shot_request, None
        try:
            w, h = (int(v) for v in imgui.get_io().display_size)
            fb = imgui.get_io().display_framebuffer_scale
            img = read_framebuffer(0, 0, int(w * fb.x), int(h * fb.y))
            save_png(img, path)
            self.gui_shot_done.append(path)
            self.state.capture_message = Message(f"saved {path}")
            self.state.last_capture = str(path)
        except Exception as exc:
            self.state.capture_message = Message(f"save GUI failed: {type(exc).__name__}: {exc}", error=True)

    # ------------------------------------------------------------------ windows
    def draw_viewport(self) -> None:
        s = self.state
        self.drawn_errors = []
        io = imgui.get_io()
        avail = imgui.get_content_region_avail()
        side = max(16.0, min(avail.x, avail.y))
        pos = imgui.get_cursor_pos()
        x0 = pos.x + (avail.x - side) / 2
        imgui.set_cursor_pos(imgui.ImVec2(x0, pos.y))
        screen = imgui.get_cursor_screen_pos()
        self.image_rect = (screen.x, screen.y, side, side)
        imgui.invisible_button(
            "##canvas",
            imgui.ImVec2(side, side),
            imgui.ButtonFlags_.mouse_button_left | imgui.ButtonFlags_.mouse_button_right,
        )
        hovered, active = imgui.is_item_hovered(), imgui.is_item_active()
        self.dragging = active
        if active and imgui.is_mouse_dragging(imgui.MouseButton_.left, 0.0):
            d = io.mouse_delta
            if d.x or d.y:
                s.camera.orbit(d.x, d.y)
        if active and imgui.is_mouse_dragging(imgui.MouseButton_.right, 0.0):
            d = io.mouse_delta
            if d.x or d.y:
                s.camera.pan(d.x, d.y, side)
        if hovered and io.mouse_wheel:
            s.camera.zoom(io.mouse_wheel)
        if hovered and imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
            s.camera.reset()
        if imgui.is_window_focused(imgui.FocusedFlags_.root_and_child_windows) and imgui.is_key_pressed(imgui.Key.r):
            s.camera.reset()

        try:
            self._gl_sync()
            drew_gl = self._draw_grid_if_moving()
        except Exception as exc:
            drew_gl = False
            self.gl_error = f"GL: {type(exc).__name__}: {exc}"
            self._add_error(self.gl_error)
        dl = imgui.get_window_draw_list()
        p0, p1 = imgui.ImVec2(screen.x, screen.y), imgui.ImVec2(screen.x + side, screen.y + side)
        if drew_gl:
            dl.add_image(imgui.ImTextureRef(self.raymarcher.target.id), p0, p1)
        elif self.shown is not None and self.tex is not None:
            dl.add_image(imgui.ImTextureRef(self.tex.id), p0, p1)
            self.shown_kind = "torch"
        else:
            dl.add_rect_filled(p0, p1, imgui.get_color_u32(imgui.Col_.frame_bg))
            dl.add_text(imgui.ImVec2(p0.x + 8, p0.y + 8), imgui.get_color_u32(imgui.Col_.text), self._placeholder())
        df_error = ""
        if s.scene == "dreamfusion" and self.df_session is not None and self.df_session.worker.error:
            df_error = f"DreamFusion: {self.df_session.worker.error}"
        errors = [e for e in (self.worker_error, self.gl_error, df_error) if e]
        if errors:
            y = p0.y + 8
            for e in errors:
                dl.add_text(imgui.ImVec2(p0.x + 8, y), imgui.get_color_u32(imgui.ImVec4(1, 0.3, 0.3, 1)), e)
                y += imgui.get_text_line_height_with_spacing()
            self.drawn_errors.extend(errors)

    def _placeholder(self) -> str:
        if self.state.scene == "dreamfusion":
            sess = self.df_session
            if sess is None:
                return "no DreamFusion object: press Start in the DreamFusion panel"
            if sess.df is None:
                return "loading the prior and building the object..."
        return "rendering..."

    def status_text(self) -> str:
        fps = imgui.get_io().framerate
        f = self.shown
        if self.shown_kind == "gl" and self.raymarcher is not None:
            render = f"GL grid {self.raymarcher.grid_resolution}^3 {self.gl_frame_ms:.1f} ms, {self.gl_resolution} px"
        elif f is not None:
            render = f"torch {f.ms:.0f} ms, {f.resolution} px{'' if f.full else ' (interactive)'}"
        else:
            render = "no frame yet"
        busy = " | rendering" if self.render_worker.busy else ""
        train = ""
        sess = self.df_session
        if sess is not None and sess.worker.alive:
            w = sess.worker
            train = f" | DreamFusion {w.state} step {sess.step_count}, {w.steps_per_s:.1f} steps/s"
        scene = "DreamFusion" if self.state.scene == "dreamfusion" else "EG3D"
        return f"{fps:.0f} fps | {scene}: {render} | {self.engine.device.type}{busy}{train}"

    def draw_status_line(self) -> None:
        imgui.text(self.status_text())
        if self.state.banner:
            imgui.same_line()
            imgui.text_colored(imgui.ImVec4(1.0, 0.75, 0.2, 1.0), f"| {self.state.banner}")

    def show_status(self) -> None:
        self.draw_status_line()

    # ------------------------------------------------------------------ scene and DreamFusion actions (GUI thread)
    def set_scene(self, scene: str) -> None:
        if scene == self.state.scene:
            return
        self.state.set_scene(scene, dreamfusion_camera)
        self.shown, self._pending_upload = None, None
        self.last_full_key = self.last_interactive_key = None
        self._df_last = (None, None)
        self.last_camera_key = self.state.camera.key()

    def df_settings(self) -> DreamFusionSettings:
        s = self.state
        return DreamFusionSettings(
            prompt=s.df_prompt,
            guidance=s.df_guidance,
            guidance_scale=float(s.df_scale),
            steps=int(s.df_steps),
            lr=float(s.df_lr),
            prior_path=s.df_prior_path,
            resolution=int(s.df_resolution),
            seed=int(s.df_seed),
            extra=dict(s.df_extra),
        )

    def df_changed(self) -> bool:
        """The panel's settings differ from the running object's (they apply after Reset)."""
        sess = self.df_session
        if sess is None:
            return False
        a, b = self.df_settings(), sess.settings
        return (a.prompt, a.guidance, a.guidance_scale, a.lr, a.prior_path, a.resolution, a.seed, a.steps) != (
            b.prompt,
            b.guidance,
            b.guidance_scale,
            b.lr,
            b.prior_path,
            b.resolution,
            b.seed,
            b.steps,
        )

    def df_start(self) -> None:
        """Start (a new object when there is none or the last one failed), continue after Stop, resume a pause."""
        sess = self.df_session
        if sess is not None and sess.worker.error:
            self.df_reset()
            sess = None
        if sess is None:
            sess = DreamFusionSession(self.df_settings(), int(self.state.df_view_resolution), make=self.df_make)
            self.df_session = sess
            self._df_last = (None, None)
        if sess.worker.alive:
            sess.worker.resume()
        else:
            sess.start()
        self.set_scene("dreamfusion")
        self.focus_window("Training")  # the loss plot, in the lower dock

    def focus_window(self, title: str) -> None:
        """Bring a docked panel's tab to the front (the runner holds its own copies of the dockable windows)."""
        try:
            hello_imgui.get_runner_params().docking_params.focus_dockable_window(title)
        except Exception:  # no runner (unit use of the app object)
            pass

    def df_pause(self) -> None:
        if self.df_session is not None:
            self.df_session.worker.pause()

    def df_stop(self) -> None:
        """Ask the loop to end after the current step (the thread finishes on its own; the GUI does not wait)."""
        if self.df_session is not None:
            self.df_session.worker.request_stop()

    def df_reset(self) -> None:
        """Drop the object and its history (the next Start builds a new one from the panel's settings)."""
        sess, self.df_session = self.df_session, None
        if sess is not None:
            sess.worker.request_stop()  # its thread ends after the step in flight; the GUI does not wait
        self._df_last = (None, None)
        if self.state.scene == "dreamfusion":
            self.shown, self._pending_upload = None, None

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
        rp.callbacks.before_swap = self._before_swap
        rp.callbacks.before_exit = self.close
        rp.callbacks.show_status = self.show_status

        split = hello_imgui.DockingSplit("MainDockSpace", "SideSpace", imgui.Dir.right, 0.34)
        split_low = hello_imgui.DockingSplit("SideSpace", "SideLow", imgui.Dir.down, 0.45)
        rp.docking_params.docking_splits = [split, split_low]
        windows = []
        vp = hello_imgui.DockableWindow("Viewport", "MainDockSpace", self.draw_viewport)
        vp.imgui_window_flags = imgui.WindowFlags_.no_scrollbar | imgui.WindowFlags_.no_scroll_with_mouse
        windows.append(vp)
        for panel in PANELS:
            w = hello_imgui.DockableWindow(panel.TITLE, panel.DOCK, (lambda p=panel: p.draw(self)))
            windows.append(w)
        rp.docking_params.dockable_windows = windows
        return rp

    def frame_cap(self) -> float:
        """The GUI's frame-rate cap now: `df_fps_cap` while DreamFusion trains, none while the camera moves (the
        optimiser holds then) or when nothing trains."""
        sess = self.df_session
        if sess is None or not sess.worker.training or sess.worker.holding or self.dragging:
            return 0.0
        return float(self.state.df_fps_cap)

    def _pre_new_frame(self) -> None:
        cap = self.frame_cap()
        now = time.perf_counter()
        if cap > 0 and self._last_frame_t is not None:
            wait = 1.0 / cap - (now - self._last_frame_t)
            if wait > 0:
                time.sleep(wait)
        self._last_frame_t = time.perf_counter()
        self.frames += 1
        self.df_plotted, self.df_drawn_error = 0, ""  # set again by the panels that draw them this frame
        try:
            self.update()
        except Exception as exc:  # keep the app alive; say what went wrong
            self.worker_error = f"viewer: {type(exc).__name__}: {exc}"
            self._add_error(self.worker_error)

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
                    self.open_model(paths[0])

            self._drop_cb = on_drop  # keep a reference
            glfw.set_drop_callback(glfw_window_hello_imgui(), on_drop)
        except Exception as exc:
            self._add_error(f"drag-and-drop unavailable: {exc}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.df_session is not None:
            self.df_session.stop(10)
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

    # ------------------------------------------------------------------ helpers for tests and scripts
    def settled(self) -> bool:
        """No work in flight and the frame on screen is the full-quality render of the current state."""
        s = self.state
        spec = s.latent_spec(self.view_label())
        full_key = (spec, self.settings(), s.camera.key(), self.engine.generation)
        return (
            self.render_worker.idle
            and self.shown is not None
            and self.shown.full
            and self.last_full_key == full_key
            and self.shown.stamp == self.stamp
            and self.shown.camera_key == s.camera.key()
            and self._pending_upload is None
        )
