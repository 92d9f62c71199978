"""The DreamFusion scene: one optimisation at a time (a DreamFusionSession: prior -> object -> training thread), its
settings (DreamFusionState), its orbit camera, and its view.

The view re-renders from the latest weights at most every `refresh_s` while training, at once when the camera or the
display mode changes (reduced size while the camera moves). While the camera moves the optimiser holds (sleeps) so
the orbit stays smooth, and while it trains the app caps the GUI's frame rate (`fps_cap`) so the optimiser gets the CPU.
"""

from __future__ import annotations

import copy

from .dreamfusion import (
    DFSpec,
    DreamFusionSession,
    DreamFusionSettings,
    default_prior_path,
    default_scale,
    dreamfusion_camera,
    run_settings,
)
from .dynres import DynamicResolution
from .generator_session import Frame
from .scene import CaptureUnavailable, Services, ViewportImage
from .state import DreamFusionState
from .workers import RenderRequest

__all__ = ["DreamFusionScene"]

NO_OBJECT = "no DreamFusion object yet: press Start in the DreamFusion panel"


class DreamFusionScene:
    name = "dreamfusion"
    label = "DreamFusion"

    def __init__(self, services: Services, state: DreamFusionState, make=None):
        self.services = services
        self._state = state
        if not state.prior_path:
            state.prior_path = default_prior_path()
        if state.scale is None:
            state.scale = default_scale(state.guidance, state.prior_path)
        if state.camera is None:
            state.camera = dreamfusion_camera()
        self.session: DreamFusionSession | None = None
        self.make = make  # tests: settings -> DreamFusion object (default: load the prior, build the object)
        self.image = ViewportImage()
        self.dynres = DynamicResolution(full=int(state.view_resolution), target_ms=70.0, floor=32)
        self._last = (None, None)  # (view key, step) of the last request
        self._submit_t = 0.0
        self._render_ms = 0.0  # the last full-size view's render time

    @property
    def state(self) -> DreamFusionState:
        return self._state

    @property
    def on_screen(self) -> bool:
        return self.services.state.scene == self.name

    def show(self, scene: str) -> None:
        """Put `scene` (eg3d | dreamfusion) on screen."""
        self.services.set_scene(scene)

    # ------------------------------------------------------------------ the optimisation (GUI thread)
    def settings(self) -> DreamFusionSettings:
        return DreamFusionSettings.from_state(self._state)

    def changed(self) -> bool:
        """The panel's settings differ from the running object's (they apply after Reset)."""
        if self.session is None:
            return False
        return self.settings().differs(self.session.settings)

    def use_prior(self, folder: str) -> None:
        """A prior folder opened elsewhere (the Model panel): use it, with its method's default scale, and show."""
        s = self._state
        s.prior_path = folder
        s.scale = default_scale(s.guidance, folder)
        self.show(self.name)

    def open_run(self, folder: str) -> None:
        """Show a `tristudio dreamfusion` run: its object at its newest checkpoint (loaded in the training thread, then
        paused), its settings in the panel, its log in the loss plot; Start continues it, in memory, up to its steps.
        Raises ValueError (naming the problem) for a folder that is not such a run."""
        settings = run_settings(folder)
        self.reset()
        s = self._state
        s.scale, s.note = settings.guidance_scale, ""
        for name in ("prompt", "guidance", "steps", "lr", "prior_path", "resolution", "seed", "extra"):
            setattr(s, name, copy.deepcopy(getattr(settings, name)))
        self.session = self._session(settings, run_dir=folder)
        self.session.start(paused=True)
        self.show(self.name)
        self.services.focus_window("DreamFusion")  # its settings (the panel)
        self.services.focus_window("Training")  # its loss history

    def _session(self, settings: DreamFusionSettings, run_dir=None) -> DreamFusionSession:
        note = lambda line: setattr(self._state, "note", line)  # noqa: E731
        return DreamFusionSession(settings, int(self._state.view_resolution), self.make, run_dir, note)

    def start(self) -> None:
        """Start (a new object when there is none or the last one failed), continue after Stop, resume a pause."""
        sess = self.session
        run_dir = sess.run_dir if sess is not None else None
        if sess is not None and sess.worker.error:  # a failed opened run opens again (with the panel's prior, say)
            self.reset()
            sess = None
        if sess is None:
            sess = self._session(self.settings(), run_dir)
            self.session = sess
            self._last = (None, None)
        sess.set_steps(self._state.steps)  # the panel's total: a finished object can be trained further
        if sess.worker.alive:
            sess.worker.resume()
        else:
            sess.start()
        self.show(self.name)
        self.services.focus_window("Training")  # the loss plot, in the lower dock

    def pause(self) -> None:
        if self.session is not None:
            self.session.worker.pause()

    def stop(self) -> None:
        """Ask the loop to end after the current step (the thread finishes on its own; the GUI does not wait)."""
        if self.session is not None:
            self.session.worker.request_stop()

    def reset(self) -> None:
        """Drop the object and its history (the next Start builds a new one from the panel's settings)."""
        sess, self.session = self.session, None
        if sess is not None:
            sess.worker.request_stop()  # its thread ends after the step in flight; the GUI does not wait
        self._last = (None, None)
        self.image.clear()

    def close(self, timeout: float = 10.0) -> None:
        if self.session is not None:
            self.session.stop(timeout)

    @property
    def error(self) -> str:
        sess = self.session
        return sess.worker.error if sess is not None and sess.worker.error else ""

    def camera_activity(self, active: bool) -> None:
        """Every frame: while the camera moves (`active`), the optimiser holds so the orbit gets the CPU."""
        sess = self.session
        if active and sess is not None and sess.worker.alive:
            sess.worker.hold(0.25)
            self.services.probes.holds += 1

    def frame_cap(self, dragging: bool) -> float:
        """The GUI's frame-rate cap: `fps_cap` while training, none while the camera moves (the optimiser holds)."""
        sess = self.session
        if sess is None or not sess.worker.training or sess.worker.holding or dragging:
            return 0.0
        return float(self._state.fps_cap)

    # ------------------------------------------------------------------ requests
    def reset_requests(self) -> None:
        self._last = (None, None)

    def update(self, now: float, moving: bool) -> None:
        """At once when the camera or the display mode changes (reduced size while moving); for new weights, when the
        render worker is free and `refresh_s` has passed."""
        s, sess, sv = self._state, self.session, self.services
        if sess is None or sess.df is None:
            return
        if self.dynres.full != int(s.view_resolution):
            self.dynres.set_full(int(s.view_resolution))
        sess.view_resolution = int(s.view_resolution)
        res = self.dynres.current if moving else int(s.view_resolution)
        view_key = (sess.ident, s.show, s.camera.key(), res, not moving)
        step = sess.step_count
        last_key, last_step = self._last
        if view_key == last_key:
            if moving or step == last_step or not sv.render_worker.idle:
                return
            # while training, at most every refresh_s, and at most a third of the time spent rendering
            interval = max(s.refresh_s, 2e-3 * self._render_ms) if sess.worker.training else 0.0
            if now - self._submit_t < interval:
                return
        self._last = (view_key, step)
        self._submit_t = now
        req = RenderRequest(
            sv.next_stamp(), DFSpec(sess.ident, step, s.show), s.camera.copy(), None, res, not moving, sess.view
        )
        sv.render_worker.submit(req)

    def accept(self, frame: Frame) -> None:
        sess = self.session
        if sess is None or not isinstance(frame.latent, DFSpec) or frame.latent.ident != sess.ident:
            self.services.render_worker.dropped += 1  # a frame of an object dropped since (Reset, another run)
            return
        if not frame.full:
            self.dynres.update(frame.ms, frame.resolution)
        else:
            self._render_ms = frame.ms
        if not self.image.show(frame):
            self.services.render_worker.dropped += 1

    def settled(self) -> bool:
        shown = self.image.shown
        return (
            self.services.render_worker.idle
            and shown is not None
            and shown.full
            and shown.camera_key == self._state.camera.key()
            and self.image.pending is None
        )

    # ------------------------------------------------------------------ drawing (GUI thread)
    def placeholder(self) -> str:
        """What the empty viewport says: one state at a time (an error is drawn in red instead)."""
        sess = self.session
        if sess is None:
            return "no DreamFusion object: press Start in the DreamFusion panel"
        if sess.worker.error:
            return ""
        if sess.df is None:
            return f"loading {sess.run_dir}..." if sess.run_dir else "loading the prior and building the object..."
        return "rendering..."

    def draw(self, draw_list, p0, p1) -> list[str]:
        self.image.sync()
        self.image.draw(draw_list, p0, p1, self.placeholder())
        return [f"DreamFusion: {self.error}"] if self.error else []

    def status(self) -> str:
        f = self.image.shown
        render = f"torch {f.ms:.0f} ms, {f.resolution} px{'' if f.full else ' (interactive)'}" if f else "no frame yet"
        sess = self.session
        if sess is not None and sess.worker.alive:
            w = sess.worker
            render += f" | {w.state} step {sess.step_count}, {w.steps_per_s:.1f} steps/s"
        return render

    # ------------------------------------------------------------------ captures
    def capture_source(self) -> tuple:
        sess = self.session
        if sess is None or sess.df is None:
            raise CaptureUnavailable(NO_OBJECT)
        return sess.view, DFSpec(sess.ident, sess.step_count, self._state.show), None

    def mesh_job(self, resolution: int, path):
        from .dreamfusion import export_mesh

        sess = self.session
        if sess is None or sess.df is None:
            raise CaptureUnavailable(NO_OBJECT)
        level = float(self._state.mesh_level) if self._state.mesh_level > 0 else None  # 0: the engine's automatic
        return lambda job: export_mesh(job, sess, int(resolution), level, path)
