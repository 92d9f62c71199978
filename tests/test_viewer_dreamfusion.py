"""The DreamFusion panel of the real viewer, driven by imgui's test engine under X (Xvfb).

Start / Stop run with the shipped small-world prior (core/assets/prior_small); the DreamFusion object uses tiny sizes
(16 px training renders, 16^2 planes, 8 samples per ray) so a step takes a fraction of a second even on a loaded
2-core machine."""

from __future__ import annotations

import time

import numpy as np
import pytest
from nan_prior import nan_prior
from test_viewer_gui import display, frames_over_yields, run, split_state, tiny_G, wait  # noqa: F401  (fixtures)

pytestmark = pytest.mark.gui

TINY = dict(
    plane_resolution=16,
    plane_channels=8,
    hidden=16,
    samples=8,
    grid_resolution=8,
    proposal_samples=16,
    view_dependent=False,
)


@pytest.fixture(scope="module")
def prior_dir():
    from tristudio.core.io.assets import shipped_prior_path

    path = shipped_prior_path()
    assert (path / "model_index.json").is_file(), f"the shipped prior is missing: {path}"
    return path


def make_df_app(G, tmp_path, prior, **state_kw):
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.generator_session import GeneratorSession

    kw = dict(
        capture_dir=str(tmp_path / "captures"),
        scene="dreamfusion",
        prior_path=str(prior),
        resolution=16,
        steps=100000,
        lr=0.05,
        view_resolution=32,
        refresh_s=0.2,
        extra=dict(TINY),
    )
    kw.update(state_kw)
    state = split_state(**kw)
    state.dreamfusion.resolution = kw["resolution"]  # (the EG3D scene has a `resolution` too)
    app = ViewerApp(engine=GeneratorSession(G, name="tiny"), state=state, window_size=(800, 640), gl_resolution=32)
    base = app.runner_params

    def runner_params():  # the test engine's watchdog kills a test after 60 s: give a loaded machine more
        rp = base()
        rp.callbacks.register_tests = _relax_watchdog
        return rp

    app.runner_params = runner_params
    return app


def _relax_watchdog():
    from imgui_bundle import hello_imgui, imgui

    io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
    io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120.0, 300.0, 400.0


def df_frame(app):
    image = app.dreamfusion.image
    f = image.shown
    return f if f is not None and f.source == "dreamfusion" and image.pending is None else None


def start_until_error(ctx, app, seconds: float, what: str) -> str:
    """Click the DreamFusion panel's Start and wait for its red error line; returns the line."""
    ctx.window_focus("//DreamFusion")
    ctx.item_click("//DreamFusion/Start")
    wait(ctx, lambda: bool(app.probes.df_drawn_error), seconds, what)
    return app.probes.df_drawn_error


def test_start_trains_plots_updates_the_view_stop_ends_the_thread_and_captures_work(tiny_G, tmp_path, prior_dir):  # noqa: F811
    import trimesh
    from PIL import Image

    app = make_df_app(tiny_G, tmp_path, prior_dir, save_resolution=32, mesh_resolution=24, mesh_level=0.0)
    seen = {}

    def body(ctx, app):
        ctx.window_focus("//DreamFusion")
        ctx.item_input_value("//DreamFusion/prompt", "a blue ball")
        ctx.item_click("//DreamFusion/Start")
        sess = app.dreamfusion.session
        assert sess is not None and sess.settings.prompt == "a blue ball"
        wait(ctx, lambda: app.probes.df_plotted >= 3 and df_frame(app) is not None, 60, "loss points and a first frame")
        seen["plotted_first"] = app.probes.df_plotted
        first = df_frame(app)
        seen["first"] = (first.extra["step"], first.rgba.copy())
        # Frame rate while training: GUI frames over wall time.
        f0, s0, t0 = app.probes.frames, sess.step_count, time.perf_counter()
        while time.perf_counter() - t0 < 2.5:
            ctx.yield_()
        dt = time.perf_counter() - t0
        seen["frames"], seen["steps"] = app.probes.frames - f0, sess.step_count - s0
        seen["fps"], seen["steps_per_s"] = seen["frames"] / dt, seen["steps"] / dt
        wait(
            ctx,
            lambda: df_frame(app) is not None and df_frame(app).extra["step"] >= seen["first"][0] + 3,
            60,
            "a frame of later weights",
        )
        later = df_frame(app)
        seen["later"] = (later.extra["step"], later.rgba.copy(), later.camera_key == first.camera_key)
        # Orbit while it trains: the camera turns, the optimiser is told to hold, the view follows the camera.
        yaw0, holds0 = app.state.camera.yaw, app.probes.holds
        ctx.item_drag_with_delta("//Viewport/##canvas", (60, 0))
        seen["drag"] = (yaw0, app.state.camera.yaw, app.probes.holds - holds0)
        cam_key = app.state.camera.key()
        wait(
            ctx,
            lambda: df_frame(app) is not None and df_frame(app).camera_key == cam_key and df_frame(app).full,
            60,
            "the view of the new camera",
        )
        wait(ctx, lambda: app.probes.df_plotted >= seen["plotted_first"] + 3, 30, "more points in the loss plot")
        seen["plotted"], seen["history"] = app.probes.df_plotted, len(sess.worker.history)
        ctx.item_click("//DreamFusion/Stop")
        wait(ctx, lambda: not sess.worker.alive, 30, "the training thread to end")
        n = sess.step_count
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < 1.0:
            ctx.yield_()
        seen["after_stop"] = (n, sess.step_count, sess.worker.alive, sess.worker.state)
        # Captures of the stopped object: the saved render is the viewport's frame of the final weights.
        wait(ctx, lambda: df_frame(app) is not None and df_frame(app).extra["step"] == n, 30, "the final frame")
        seen["view"] = df_frame(app).rgba.copy()
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/Save render")
        wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, 60, "save render")
        seen["render_job"] = app.jobs.current
        ctx.item_click("//Capture/Export mesh")
        wait(ctx, lambda: app.jobs.current is not seen["render_job"] and app.jobs.current.done, 60, "mesh export")
        seen["mesh_job"] = app.jobs.current

    run(app, body)
    print(f"DreamFusion training in the viewer: GUI {seen['fps']:.1f} fps, {seen['steps_per_s']:.1f} steps/s")
    assert seen["plotted_first"] >= 3
    assert seen["plotted"] >= seen["plotted_first"] + 3 and seen["plotted"] <= seen["history"]
    (s0, img0), (s1, img1, same_camera) = seen["first"], seen["later"]
    assert s1 >= s0 + 3 and same_camera
    yaw0, yaw1, holds = seen["drag"]
    assert yaw1 < yaw0 - 0.3, f"dragging right by 60 px should turn yaw down, got {yaw0} -> {yaw1}"
    assert holds > 0, "the optimiser was never told to hold while the camera moved"
    diff = np.abs(img0[..., :3].astype(int) - img1[..., :3].astype(int)).mean()
    assert diff > 0.5, f"the view did not change from step {s0} to step {s1} (mean abs diff {diff:.3f})"
    # the GUI thread keeps drawing while the optimiser thread steps (liveness, not a speed: speed is `tristudio bench`)
    assert seen["frames"] >= 3 and seen["steps"] >= 1, f"GUI frames {seen['frames']}, steps {seen['steps']} in 2.5 s"
    assert seen["fps"] <= app.state.dreamfusion.fps_cap * 1.3, f"the frame-rate cap did not hold: {seen['fps']:.1f} fps"
    assert seen["steps_per_s"] > 0
    n, m, alive, state = seen["after_stop"]
    assert not alive and state == "stopped"
    assert m == n, f"steps went on after Stop: {n} -> {m}"
    rj, mj = seen["render_job"], seen["mesh_job"]
    assert not rj.error and not mj.error, (rj.error, mj.error)
    render = np.asarray(Image.open(rj.result_path).convert("RGB"))
    assert render.shape == (32, 32, 3)
    assert np.abs(render.astype(int) - seen["view"][..., :3].astype(int)).max() <= 1  # same weights, camera, size
    mesh = trimesh.load(mj.result_path, process=False)
    assert len(mesh.vertices) > 50 and len(mesh.faces) > 50
    assert mesh.visual.vertex_colors.shape == (len(mesh.vertices), 4)
    # inside the object's box [-bound, bound]^3 grown by half a voxel of the 24^3 mesh grid: the grid is padded so the
    # surface closes just outside the outermost voxel centres (core/mesh.py mesh_from_grid)
    assert np.abs(mesh.vertices).max() <= 0.5 + 0.5 * (1.0 / 24) + 1e-4


def test_errors_are_shown_in_red_and_the_app_keeps_running(tiny_G, tmp_path, prior_dir):  # noqa: F811
    not_a_prior = tmp_path / "not_a_prior"
    not_a_prior.mkdir()
    app = make_df_app(tiny_G, tmp_path, not_a_prior)
    seen = {}

    def body(ctx, app):
        seen["prior_error"] = start_until_error(ctx, app, 30, "the prior error")
        # one state at a time: no "loading the prior..." over the red error (viewport and panel)
        seen["placeholder"] = app.dreamfusion.placeholder()
        # A good prior; then a step that raises in the training thread.
        ctx.item_input_value("//DreamFusion/prior folder", str(prior_dir))
        ctx.item_click("//DreamFusion/Start")
        sess = app.dreamfusion.session
        wait(ctx, lambda: sess.step_count >= 2, 60, "two steps")

        def boom():
            raise RuntimeError("synthetic step failure")

        sess.df.step = boom
        wait(ctx, lambda: "synthetic step failure" in app.probes.df_drawn_error, 30, "the step error in the panel")
        seen["step_error"] = app.probes.df_drawn_error
        seen["viewport_errors"] = list(app.probes.drawn_errors)
        seen["thread_alive"] = sess.worker.alive
        seen["frames_advanced"] = frames_over_yields(ctx, app)
        # Start again: a fresh object trains.
        ctx.item_click("//DreamFusion/Start")
        new = app.dreamfusion.session
        wait(ctx, lambda: new.step_count >= 2 and not app.probes.df_drawn_error, 60, "training after the error")
        seen["recovered"] = new is not sess and new.worker.alive
        ctx.item_click("//DreamFusion/Stop")
        wait(ctx, lambda: not new.worker.alive, 30, "the stop")

    run(app, body)
    assert "not_a_prior" in seen["prior_error"]
    assert seen["placeholder"] == "", seen["placeholder"]
    assert "synthetic step failure" in seen["step_error"]
    assert any("synthetic step failure" in e for e in seen["viewport_errors"])
    assert not seen["thread_alive"]
    assert seen["frames_advanced"] >= 5
    assert seen["recovered"]


def test_a_prior_with_nan_weights_is_refused_in_red_and_nothing_trains(tiny_G, tmp_path, prior_dir):  # noqa: F811
    """Issue 15: a prior whose UNet holds a NaN must not train DreamFusion with a zero gradient in the viewer either;
    Start names the problem in red and no optimiser thread runs."""
    bad = nan_prior(prior_dir, tmp_path / "nan_prior", "unet")
    app = make_df_app(tiny_G, tmp_path, bad)
    seen = {}

    def body(ctx, app):
        seen["error"] = start_until_error(ctx, app, 60, "the NaN prior's error")
        sess = app.dreamfusion.session
        seen["trained"] = sess is not None and sess.step_count > 0
        seen["frames_advanced"] = frames_over_yields(ctx, app)

    run(app, body)
    assert "nan" in seen["error"].lower() and "unet" in seen["error"].lower(), seen["error"]
    assert not seen["trained"]
    assert seen["frames_advanced"] >= 5


def _make_run(folder, prior_dir, done: int, total: int):
    """A `tristudio dreamfusion` run folder made through the API with TINY sizes: config.json and a checkpoint at
    step `done` of `total`."""
    import dataclasses

    from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
    from tristudio.core.io.training_run import TrainingRun
    from tristudio.core.priors import load_prior

    cfg = DreamFusionConfig(prompt="a green cube", steps=total, resolution=16, lr=0.05, **TINY)
    df = DreamFusion(cfg, load_prior(prior_dir))
    TrainingRun(folder).write_config(dataclasses.asdict(cfg))
    df.run(done, out_dir=folder, checkpoint_every=done)
    return cfg


def test_a_dreamfusion_run_folder_opens_paused_at_its_step_with_its_settings_and_continues(tiny_G, tmp_path, prior_dir):  # noqa: F811
    """`tristudio view RUN` (ViewerApp(model_path=RUN)) shows the run's object as saved, its settings and its loss
    history; Start continues it in memory to its total, and the run folder is never written."""
    from tristudio.core.dreamfusion.optimize import DreamFusion
    from tristudio.core.priors import load_prior
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.dreamfusion import _to_rgba
    from tristudio.viewer.generator_session import GeneratorSession

    run_dir = tmp_path / "run"
    cfg = _make_run(run_dir, prior_dir, done=2, total=4)
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    state = split_state(capture_dir=str(tmp_path / "captures"), view_resolution=32, refresh_s=0.2)
    app = ViewerApp(
        engine=GeneratorSession(tiny_G, name="tiny"), model_path=str(run_dir), state=state, window_size=(800, 640)
    )
    seen = {}

    def body(ctx, app):
        sess = app.dreamfusion.session
        wait(ctx, lambda: sess.df is not None and df_frame(app) is not None and df_frame(app).full, 90, "the run")
        wait(ctx, lambda: app.probes.df_plotted > 0, 10, "the run's loss plot brought to the front")
        for _ in range(10):
            ctx.yield_()
        frame = df_frame(app)
        seen["opened"] = (app.state.scene, sess.worker.state, sess.step_count, len(sess.worker.history))
        d = app.state.dreamfusion
        seen["panel"] = (d.prompt, d.guidance, d.steps, d.resolution, d.lr)
        camera = app.state.dreamfusion.camera
        assert frame.camera_key == camera.key()
        seen["frame"], seen["camera"] = frame.rgba.copy(), camera.copy()
        ctx.window_focus("//DreamFusion")
        ctx.item_click("//DreamFusion/Start")
        wait(ctx, lambda: sess.worker.state == "finished", 90, "the run's remaining steps")
        seen["continued"] = (sess.step_count, len(sess.worker.history), app.dreamfusion.changed())
        ctx.item_input_value("//DreamFusion/steps", 5)  # a longer run: Start trains the same object further
        ctx.item_click("//DreamFusion/Start")
        wait(ctx, lambda: sess.step_count == 5 and sess.worker.state == "finished", 90, "one more step")
        seen["longer"] = (app.dreamfusion.session is sess, sess.df.cfg.steps, app.dreamfusion.changed())

    run(app, body)
    assert seen["panel"][:4] == ("a green cube", cfg.guidance, 4, 16)
    assert seen["panel"][4] == pytest.approx(0.05)  # (ImGui's float32)
    assert seen["opened"] == ("dreamfusion", "paused", 2, 2)  # on screen, not stepping, its log in the plot
    # the viewport shows the run's own object: a fresh load of the run renders the same pixels
    df = DreamFusion.load(run_dir, load_prior(prior_dir), warn=None)
    cams = seen["camera"].cameras()
    out = df.render(cams, 32, "lambertian", background=True, deterministic=True)
    assert np.abs(_to_rgba(out, "shaded", cams).astype(int) - seen["frame"].astype(int)).max() <= 1
    assert seen["continued"] == (4, 4, False)
    assert seen["longer"] == (True, 5, False)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files  # read, never written


def test_a_run_folder_without_a_checkpoint_is_one_error_in_the_model_panel(tiny_G, tmp_path):  # noqa: F811
    import json

    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.generator_session import GeneratorSession

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"prompt": "a cube", "guidance": "sds"}))  # killed before step 1
    app = ViewerApp(engine=GeneratorSession(tiny_G, name="tiny"), model_path=str(run_dir), state=split_state())
    assert "holds no DreamFusion checkpoint yet" in app.state.eg3d.model_error
    assert app.dreamfusion.session is None and app.state.scene == "eg3d"


def _open_in_thread(scene, run_dir, timeout=120.0):
    """DreamFusionScene.open_run without a window: wait for the training thread to load the run (paused)."""
    scene.open_run(str(run_dir))
    sess, t0 = scene.session, time.perf_counter()
    while not (sess.worker.setup_done or sess.worker.error) and time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
    return sess


def _scene():
    from tristudio.viewer.dreamfusion_scene import DreamFusionScene
    from tristudio.viewer.probes import Probes
    from tristudio.viewer.scene import Services
    from tristudio.viewer.state import DreamFusionState, ViewerState
    from tristudio.viewer.workers import RenderWorker

    state = ViewerState()
    services = Services(state, Probes())
    services.render_worker = RenderWorker(lambda: None, threads=1)
    return DreamFusionScene(services, DreamFusionState(view_resolution=16))


def test_opening_a_run_reads_it_only_and_says_what_it_skipped(tmp_path, prior_dir):
    """The viewer is not the run's writer: a live run's temporaries and uncommitted step folders stay (opening used to
    clean them as orphans, and killed a training `tristudio dreamfusion` in the same folder); a corrupt newest
    checkpoint and a run held by a live process are said in the panel's note."""
    import os
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    _make_run(run_dir, prior_dir, done=2, total=4)
    temp = run_dir / "checkpoints" / ".step-00000003.abcd"
    temp.mkdir()
    (temp / "model.safetensors").write_bytes(b"being written")
    (run_dir / "checkpoints" / "step-00000004").mkdir()  # renamed into place, not yet committed
    (run_dir / ".log.jsonl.1234.tmp").write_text("{}")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / ".lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        files = sorted(str(p) for p in run_dir.rglob("*"))
        scene = _scene()
        sess = _open_in_thread(scene, run_dir)
        assert not sess.worker.error and sess.step_count == 2
        assert sorted(str(p) for p in run_dir.rglob("*")) == files  # nothing removed, nothing added
        assert f"is being trained by pid {holder.pid}" in scene.state.note and "step 2" in scene.state.note
        sess.stop(30)
    finally:
        holder.kill()
        holder.wait()
    # a corrupt newest checkpoint: the older one opens, and the panel says so
    clean = tmp_path / "clean"
    _make_run(clean, prior_dir, done=2, total=4)
    from tristudio.core.dreamfusion.optimize import DreamFusion
    from tristudio.core.priors import load_prior

    df = DreamFusion.load(clean, load_prior(prior_dir), warn=None)
    df.run(3, out_dir=clean, checkpoint_every=1)
    newest = clean / "checkpoints" / "step-00000003" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-64])
    scene = _scene()
    sess = _open_in_thread(scene, clean)
    assert sess.step_count == 2 and "step-00000003" in scene.state.note and "falling back" in scene.state.note
    sess.stop(30)


def test_a_failed_open_is_retried_on_the_run_and_reset_keeps_the_runs_config(tmp_path, prior_dir):
    import json

    run_dir = tmp_path / "run"
    _make_run(run_dir, prior_dir, done=2, total=3)
    (run_dir / "command.json").write_text(json.dumps({"command": "dreamfusion", "options": {"prior_path": "/gone"}}))
    scene = _scene()
    sess = _open_in_thread(scene, run_dir)
    assert "/gone" in sess.worker.error  # the run's prior is missing: one red line
    scene.state.prior_path = str(prior_dir)  # the user points the panel at a prior and presses Start
    scene.start()
    again = scene.session
    t0 = time.perf_counter()
    while again.worker.alive and time.perf_counter() - t0 < 120:
        time.sleep(0.05)
    assert again.run_dir == run_dir and not again.worker.error and again.step_count == 3  # the run, continued
    assert scene.state.extra["view_dependent"] is False  # the run's own config, not a panel default
    scene.reset()
    scene.start()  # Reset + Start: a new object with the run's configuration
    new = scene.session
    t0 = time.perf_counter()
    while new.df is None and not new.worker.error and time.perf_counter() - t0 < 120:
        time.sleep(0.05)
    assert new.run_dir is None and new.df.cfg.view_dependent is False and new.df.cfg.plane_resolution == 16
    new.stop(30)


def test_frames_of_a_dropped_object_never_reach_the_viewport(tmp_path, prior_dir):
    from tristudio.viewer.dreamfusion import DFSpec
    from tristudio.viewer.generator_session import Frame

    scene = _scene()
    run_dir = tmp_path / "run"
    _make_run(run_dir, prior_dir, done=2, total=2)
    sess = _open_in_thread(scene, run_dir)
    rgba = np.zeros((16, 16, 4), np.uint8)
    old = Frame(rgba, latent=DFSpec(sess.ident - 1, 2), source="dreamfusion")  # rendered for an earlier object
    scene.accept(old)
    assert scene.image.pending is None and scene.image.shown is None
    scene.accept(Frame(rgba, latent=DFSpec(sess.ident, 2), source="dreamfusion"))
    assert scene.image.pending is not None
    scene.reset()
    scene.accept(Frame(rgba, latent=DFSpec(sess.ident, 2), source="dreamfusion"))  # in flight during Reset
    assert scene.image.pending is None and scene.image.shown is None


def test_cancel_stops_a_dreamfusion_mesh_export_before_anything_is_written(tmp_path, prior_dir):
    from tristudio.viewer.dreamfusion import export_mesh
    from tristudio.viewer.workers import Job, JobCancelled

    run_dir = tmp_path / "run"
    _make_run(run_dir, prior_dir, done=2, total=2)
    sess = _open_in_thread(_scene(), run_dir)
    job = Job("mesh", fn=None)
    job.cancel()  # (the grid's first slices call job.step, which raises)
    with pytest.raises(JobCancelled):
        export_mesh(job, sess, 16, 1.0, tmp_path / "out" / "m.ply")
    assert not (tmp_path / "out").exists()
    job = Job("mesh", fn=None)
    export_mesh(job, sess, 16, None, tmp_path / "out" / "m.ply")
    assert (tmp_path / "out" / "m.ply").is_file() and job.extra["faces"] > 0
