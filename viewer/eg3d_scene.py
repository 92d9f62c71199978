"""The EG3D scene: a generator (GeneratorSession), its latent and render settings (Eg3dState), its orbit camera, and
the two ways a frame reaches the viewport:

- torch (the render worker): the exact render; while the camera moves, at a resolution steered by DynamicResolution;
- GL (GUI thread): the baked grid of the current latent ray-marched by GridRaymarcher while the camera moves (the
  `grid` fast path); once the camera has rested for `rest_ms`, one full-quality torch frame replaces it.

The camera is framed from the model: it orbits the centre of the density of the model's average object at the
trained distance (rendering_kwargs avg_camera_radius), and zooms within model_radius_range, with the ray interval
moved along (orbit.ray_interval), so the object never leaves the rendered slab.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .dreamfusion import is_dreamfusion_run, prior_folder
from .dynres import DynamicResolution
from .generator_session import Frame, GeneratorSession, RenderSettings
from .model import load_model
from .orbit import DEFAULT_FOV_DEG, OrbitCamera, model_radius_range, ray_interval
from .scene import Services, ViewportImage
from .state import Eg3dState
from .workers import BakeResult, RenderRequest

__all__ = ["Eg3dScene"]

_GL_MODES = {"final": 0, "raw": 0, "normals": 0, "depth": 1, "opacity": 2}
_BG_RGB = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5)}


class Eg3dScene:
    name = "eg3d"
    label = "EG3D"

    def __init__(self, services: Services, state: Eg3dState, engine: GeneratorSession, gl_resolution: int = 192):
        self.services = services
        self._state = state
        self.engine = engine
        self.gl_resolution = int(gl_resolution)
        state.banner, state.model_name = engine.banner, engine.name
        self._reset_render_defaults(keep=True)
        if state.camera is None:
            state.camera = self.framed_camera()
        self.image = ViewportImage()
        self.dynres = DynamicResolution(full=self.full_resolution, target_ms=state.target_ms)
        self.raymarcher = None
        self.gl_error = ""
        self.gl_frame_ms = 0.0
        self.bake_ms = 0.0
        self.shown_kind = "none"  # torch | gl | none: what the viewport drew last
        self._pending_grid: BakeResult | None = None
        self._last_full_key = None
        self._last_interactive_key = None
        self._anim_t0 = time.perf_counter()
        self._loader: threading.Thread | None = None
        self._loaded = None  # (G, name, centre), ("prior", folder, None) or an exception, from the loader thread
        self.on_prior = lambda folder: None  # the app: a diffusers folder opened here becomes the DreamFusion prior
        self.on_run = lambda folder: None  # the app: a DreamFusion run folder opened here goes to the DreamFusion scene

    @property
    def state(self) -> Eg3dState:
        return self._state

    # ------------------------------------------------------------------ model
    def framed_camera(self, pivot: tuple[float, float, float] | None = None) -> OrbitCamera:
        """The start camera for the current model: frontal, at the trained radius, orbiting the model's own centre
        (`pivot`, when the loader thread has measured it already)."""
        rk = self.engine.G.rendering_kwargs
        return OrbitCamera(
            radius=float(rk.get("avg_camera_radius", 2.7)),
            fov_deg=DEFAULT_FOV_DEG,
            pivot=pivot or self.engine.content_centre(),
            radius_range=model_radius_range(rk),
        )

    def _reset_render_defaults(self, keep: bool = False) -> None:
        """The model's own neural resolution and samples (keep=True: only where the state has none)."""
        s = self._state
        if not (keep and s.resolution):
            s.resolution = self.engine.default_resolution
        if not (keep and s.samples):
            s.samples = self.engine.default_samples
        if s.cutoff > self.engine.num_ws:
            s.cutoff = 0

    @property
    def full_resolution(self) -> int:
        return int(self._state.resolution or self.engine.default_resolution)

    def open_model(self, path: str) -> None:
        """Load in a thread; the result (or the error, in red in the Model panel) is picked up by poll_loader()."""
        s = self._state
        if self._loader is not None and self._loader.is_alive():
            s.model_error = "a model is still loading"
            return
        s.model_path, s.model_error, s.model_loading = str(path), "", True
        folder = Path(str(path).strip()).expanduser()
        if is_dreamfusion_run(folder):  # `tristudio dreamfusion --out RUN`: loaded by the DreamFusion scene
            s.model_loading = False
            try:
                self.on_run(str(folder))
            except ValueError as exc:
                s.model_error = f"could not open {folder}: {exc}"
            return
        prior = prior_folder(folder)

        def work():
            try:
                if prior is not None:  # a diffusers folder: the DreamFusion prior (loaded here to check it, cached)
                    from .dreamfusion import load_prior_cached

                    load_prior_cached(str(prior))
                    self._loaded = ("prior", str(prior), None)
                else:
                    G = load_model(path)
                    # the orbit pivot costs a synthesis + a 32^3 bake (~1 s for a 512 px model on a CPU): here, not
                    # on the GUI thread, in a session of its own (the render worker keeps using the current one)
                    centre = GeneratorSession(G, device=self.engine.device).content_centre()
                    self._loaded = (G, str(path), centre)
            except Exception as exc:
                self._loaded = exc

        self._loader = threading.Thread(target=work, name="tristudio-load", daemon=True)
        self._loader.start()

    def poll_loader(self) -> None:
        """Take the loader thread's result (every frame, whichever scene is on screen)."""
        if self._loaded is None:
            return
        loaded, self._loaded = self._loaded, None
        s = self._state
        s.model_loading = False
        if isinstance(loaded, Exception):
            s.model_error = f"could not load {s.model_path}: {type(loaded).__name__}: {loaded}"
            return
        G, name, centre = loaded
        if isinstance(G, str) and G == "prior":
            s.prior_loaded = name
            self.on_prior(name)
            return
        self.engine.set_generator(G, name=name, banner="")
        s.banner, s.model_name, s.model_error = "", name, ""
        self._reset_render_defaults()
        s.camera = self.framed_camera(centre)
        self.image.clear()
        self._last_full_key = self._last_interactive_key = None

    # ------------------------------------------------------------------ requests
    def view_label(self):
        s = self._state
        return tuple(float(v) for v in s.camera.cameras().label()[0]) if s.cond == "view" else None

    def spec(self):
        return self._state.latent_spec(self.view_label())

    def settings(self) -> RenderSettings:
        s = self._state
        return RenderSettings(
            output=s.output, resolution=int(s.resolution), samples=int(s.samples), background=s.background
        )

    def _grid_key(self, spec):
        return (spec, int(self._state.grid_resolution), self.engine.generation)

    def grid_ready(self, spec=None) -> bool:
        """The baked grid of `spec` (default: the current latent) is on the GPU side."""
        spec = self.spec() if spec is None else spec
        return self.raymarcher is not None and self.raymarcher.grid_key == self._grid_key(spec)

    def _submit(self, spec, settings, resolution, full: bool) -> None:
        sv = self.services
        req = RenderRequest(sv.next_stamp(), spec, self._state.camera.copy(), settings, resolution, full)
        sv.render_worker.submit(req)

    def reset_requests(self) -> None:
        """Request again from scratch (the scene comes back on screen)."""
        self._last_full_key = self._last_interactive_key = None

    def update(self, now: float, moving: bool) -> None:
        s = self._state
        if s.animate:
            phase = ((now - self._anim_t0) * s.animate_speed) % 2.0
            s.t = phase if phase <= 1.0 else 2.0 - phase
        spec, settings = self.spec(), self.settings()
        self.dynres.target_ms = s.target_ms
        if self.dynres.full != self.full_resolution:
            self.dynres.set_full(self.full_resolution)
        full_key = (spec, settings, s.camera.key(), self.engine.generation)
        use_grid = s.quality == "interactive" and s.fast_path == "grid" and self.gl_error == ""
        if use_grid and s.cond == "frontal":
            self.services.render_worker.want_bake(spec, s.grid_resolution, self.engine.generation)
        if full_key == self._last_full_key:
            return
        if s.quality == "full" or not moving:
            self._last_full_key = full_key
            self._submit(spec, settings, None, True)
            return
        # The camera is moving (interactive quality): the viewport draws the baked grid when it is ready for this
        # latent, else torch renders at the dynamic resolution.
        if use_grid and self.grid_ready(spec):
            return
        if full_key != self._last_interactive_key:
            self._last_interactive_key = full_key
            self._submit(spec, settings, self.dynres.current, False)

    def accept(self, frame: Frame) -> None:
        if not frame.full:
            self.dynres.update(frame.ms, frame.resolution)
        if not self.image.show(frame):
            self.services.render_worker.dropped += 1  # stale: a newer frame is already on screen

    def accept_bake(self, result: BakeResult) -> None:
        self._pending_grid = result

    def settled(self) -> bool:
        s, shown = self._state, self.image.shown
        full_key = (self.spec(), self.settings(), s.camera.key(), self.engine.generation)
        return (
            self.services.render_worker.idle
            and shown is not None
            and shown.full
            and self._last_full_key == full_key
            and shown.camera_key == s.camera.key()
            and self.image.pending is None
        )

    # ------------------------------------------------------------------ drawing (GUI thread)
    def _gl_sync(self) -> None:
        from .gl import GridRaymarcher

        if self.image.pending is not None:
            self.shown_kind = "torch"
        self.image.sync()
        grid, self._pending_grid = self._pending_grid, None
        if grid is not None and grid.generation == self.engine.generation:
            try:
                if self.raymarcher is None:
                    self.raymarcher = GridRaymarcher()
                self.raymarcher.upload_grid(grid.grid, (grid.spec, grid.resolution, grid.generation))
                self.bake_ms = grid.ms
            except Exception as exc:
                self._gl_failed(exc)

    def _gl_failed(self, exc: Exception) -> None:
        self.gl_error = f"GL grid path disabled: {type(exc).__name__}: {exc}"
        self.services.state.add_error(self.gl_error)

    def gl_background(self) -> tuple[float, float, float]:
        if self._state.background == "model":
            return (1.0, 1.0, 1.0) if self.engine.white_back else (0.0, 0.0, 0.0)
        return _BG_RGB[self._state.background]

    def _draw_grid_if_moving(self) -> bool:
        """Draw the baked grid for the current camera when the torch frame on screen is for another camera."""
        s = self._state
        if s.quality != "interactive" or s.fast_path != "grid" or self.gl_error:
            return False
        spec = self.spec()
        if not self.grid_ready(spec):
            return False
        shown = self.image.shown
        if shown is not None and shown.camera_key == s.camera.key() and shown.latent == spec:
            return False
        rk = self.engine.G.rendering_kwargs
        near, far = ray_interval(rk, s.camera.radius)
        t0 = time.perf_counter()
        try:
            self.raymarcher.draw(
                s.camera,
                (self.gl_resolution, self.gl_resolution),
                n_samples=2 * int(s.samples or 48),
                ray_start=near,
                ray_end=far,
                box_warp=float(rk["box_warp"]),
                mode=_GL_MODES[s.output],
                background=self.gl_background(),
                depth_range=(near, far),
            )
        except Exception as exc:
            self._gl_failed(exc)
            return False
        self.gl_frame_ms = (time.perf_counter() - t0) * 1000
        self.shown_kind = "gl"
        probes = self.services.probes
        probes.gl_frames += 1
        if probes.keep_gl_readback:
            probes.last_gl_image = (s.camera.key(), self.raymarcher.read())
        return True

    def draw(self, draw_list, p0, p1) -> list[str]:
        from imgui_bundle import imgui

        try:
            self._gl_sync()
            drew_gl = self._draw_grid_if_moving()
        except Exception as exc:
            drew_gl = False
            self.gl_error = f"GL: {type(exc).__name__}: {exc}"
            self.services.state.add_error(self.gl_error)
        if drew_gl:
            draw_list.add_image(imgui.ImTextureRef(self.raymarcher.target.id), p0, p1)
        elif self.image.draw(draw_list, p0, p1, "rendering..."):
            self.shown_kind = "torch"
        return [self.gl_error] if self.gl_error else []

    def status(self) -> str:
        f = self.image.shown
        if self.shown_kind == "gl" and self.raymarcher is not None:
            render = f"GL grid {self.raymarcher.grid_resolution}^3 {self.gl_frame_ms:.1f} ms, {self.gl_resolution} px"
        elif f is not None:
            render = f"torch {f.ms:.0f} ms, {f.resolution} px{'' if f.full else ' (interactive)'}"
        else:
            render = "no frame yet"
        return f"{render} | {self.engine.device.type}"

    # ------------------------------------------------------------------ captures
    def capture_source(self) -> tuple:
        return self.engine, self.spec(), self.settings()

    def mesh_job(self, resolution: int, path: Path):
        from .capture import export_mesh

        engine, spec = self.engine, self.spec()
        level = None if self._state.mesh_auto else float(self._state.mesh_level)
        return lambda job: export_mesh(job, engine, spec, int(resolution), level, path)
