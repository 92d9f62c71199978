"""The real viewer app driven by imgui's test engine under X (Xvfb): camera, latents, captures, errors.

Each test opens the app on a random-init `tiny` generator and compares what the viewer shows with a direct render
through the generator's own API (independent of the viewer's engine code)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tristudio.viewer.scripted import wait_until as wait  # the other GUI test modules import it from here

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module", autouse=True)
def display():
    """Use $DISPLAY, or start an Xvfb for this module, or skip with the reason."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip(
            "GUI tests need a display: no DISPLAY and no Xvfb (install Xvfb, or run pytest under `xvfb-run -a`)"
        )
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    num = os.read(r, 16).decode().strip()
    os.close(r)
    os.environ["DISPLAY"] = f":{num}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def tiny_G():
    from tristudio.viewer.model import random_model

    return random_model("tiny", seed=0)


def split_state(**kw):
    """ViewerState from flat keywords: each goes to the part (Eg3dState, DreamFusionState, CaptureState, ViewerState)
    that has a field of that name."""
    import dataclasses

    from tristudio.viewer.state import CaptureState, DreamFusionState, Eg3dState, ViewerState

    parts = {"eg3d": Eg3dState, "dreamfusion": DreamFusionState, "capture": CaptureState}
    top = {f.name for f in dataclasses.fields(ViewerState)}
    given = {name: {} for name in parts}
    rest = {}
    for k, v in kw.items():
        owner = next((name for name, cls in parts.items() if k in {f.name for f in dataclasses.fields(cls)}), None)
        if k in top or owner is None:
            rest[k] = v
        else:
            given[owner][k] = v
    return ViewerState(**rest, **{name: cls(**given[name]) for name, cls in parts.items()})


def make_app(G, tmp_path, **state_kw):
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.generator_session import GeneratorSession

    kw = dict(capture_dir=str(tmp_path / "captures"), fast_path="torch", grid_resolution=32)
    kw.update(state_kw)
    return ViewerApp(
        engine=GeneratorSession(G, name="tiny"), state=split_state(**kw), window_size=(960, 640), gl_resolution=32
    )


def run(app, body):
    from imgui_bundle.immapp import testing

    errors = []

    def test_fn(ctx):
        try:
            body(ctx, app)
        except BaseException as exc:  # re-raised below, after the app has closed
            errors.append(exc)

    try:
        testing.run(runner_params=app.runner_params(), test_function=test_fn)
    except RuntimeError:
        if errors:  # the test body's own failure says more than the engine's
            raise errors[0] from None
        raise
    if errors:
        raise errors[0]


def settle(ctx, app, timeout=60.0):
    wait(ctx, app.settled, timeout, "the full-quality frame")
    for _ in range(2):
        ctx.yield_()  # upload + draw it


def frames_over_yields(ctx, app, yields=5) -> int:
    """How many GUI frames the app itself ran (its probes' counter) while the test engine yielded `yields` times: an
    app that keeps drawing (after an error, say) runs one per yield."""
    start = app.probes.frames
    for _ in range(yields):
        ctx.yield_()
    return app.probes.frames - start


# ----------------------------------------------------------------------------------------- direct renders


def frontal_label():
    from tristudio.core.cameras import Cameras, eg3d_lookat_sampler, intrinsics_from_fov

    return Cameras(
        eg3d_lookat_sampler(math.pi / 2, math.pi / 2, pivot=(0, 0, 0.2), radius=2.7), intrinsics_from_fov(18.837)
    ).label()


@torch.no_grad()
def direct_render(G, seed, camera, psi=0.7, z=None, output="image"):
    """EG3D's own path: z = RandomState(seed).randn, mapping with the frontal label, planes, render_planes."""
    from tristudio.core.cameras import Cameras

    if z is None:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    ws = G.mapping(z, frontal_label(), truncation_psi=psi)
    planes = G.synthesis_planes(ws)
    cam = Cameras.orbit(camera.yaw, camera.pitch, camera.radius, camera.fov_deg, camera.pivot)
    out = G.render_planes(planes, ws, cam, deterministic=True)
    img = ((out[output][0].clamp(-1, 1) + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    return img.permute(1, 2, 0).numpy()


def assert_close_images(a, b, tol=2):
    a, b = np.asarray(a[..., :3], np.int16), np.asarray(b[..., :3], np.int16)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a - b).max()
    assert diff <= tol, f"images differ by up to {diff} levels"


# ----------------------------------------------------------------------------------------- tests


def test_drag_orbits_and_matches_direct_render(tiny_G, tmp_path):
    app = make_app(tiny_G, tmp_path, fast_path="grid", output="final")
    app.probes.keep_gl_readback = True
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        from tristudio.viewer.latent import LatentSpec  # noqa: F401

        spec = app.state.eg3d.latent_spec()
        wait(ctx, lambda: app.eg3d.grid_ready(spec), 60, "the baked grid")
        before = direct_render(tiny_G, 0, app.state.camera)
        assert_close_images(app.eg3d.image.shown.rgba, before)
        yaw0 = app.state.camera.yaw
        ctx.item_drag_with_delta("//Viewport/##canvas", (80, 0))
        seen["yaw"] = (yaw0, app.state.camera.yaw)
        seen["gl_frames"] = app.probes.gl_frames
        settle(ctx, app)
        seen["shown"] = app.eg3d.image.shown.rgba.copy()
        seen["camera"] = app.state.camera.copy()
        seen["kind"] = app.eg3d.shown_kind

    run(app, body)
    yaw0, yaw1 = seen["yaw"]
    assert yaw1 < yaw0 - 0.3, f"dragging right by 80 px should turn yaw down, got {yaw0} -> {yaw1}"
    assert seen["gl_frames"] > 0, "the baked-grid GL path never drew while the camera moved"
    assert seen["kind"] == "torch"
    after = direct_render(tiny_G, 0, seen["camera"])
    assert_close_images(seen["shown"], after)
    assert np.abs(after.astype(int) - direct_render(tiny_G, 0, app.state.camera.__class__()).astype(int)).max() > 5


def test_gl_grid_matches_torch_raw_render(tiny_G, tmp_path):
    """The GL ray-march of the baked grid approximates the exact torch render of the raw image."""
    app = make_app(tiny_G, tmp_path, fast_path="grid", output="raw", resolution=32, samples=32, grid_resolution=48)
    app.probes.keep_gl_readback = True
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        wait(ctx, lambda: app.eg3d.grid_ready(app.state.eg3d.latent_spec()), 150, "the baked grid")
        ctx.item_drag_with_delta("//Viewport/##canvas", (30, 10))
        seen["gl"] = app.probes.last_gl_image
        settle(ctx, app)
        seen["torch"] = (app.eg3d.image.shown.camera_key, app.eg3d.image.shown.rgba.copy())

    run(app, body)
    (gl_key, gl), (t_key, exact) = seen["gl"], seen["torch"]
    assert gl_key == t_key, "the last GL frame and the full torch frame are for different cameras"
    err = np.abs(gl[..., :3].astype(float) - exact[..., :3].astype(float)).mean() / 255
    assert err < 0.06, f"GL grid render differs from the torch render by {err:.3f} on average"


def test_gl_and_torch_depth_show_the_background_value_off_the_object(tmp_path):
    """Depth output of the shipped heads (issue 14: black and white shards around the head): where the object does not
    cover a pixel, both the GL fast path and the torch frame show exactly the background value."""
    from tristudio.viewer.model import default_model

    G, _, banner = default_model()
    if banner:
        pytest.skip("no shipped heads model")
    app = make_app(G, tmp_path, fast_path="grid", output="depth", background="grey", grid_resolution=64)
    app.probes.keep_gl_readback = True
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        wait(ctx, lambda: app.eg3d.grid_ready(), 150, "the baked grid")
        ctx.item_drag_with_delta("//Viewport/##canvas", (30, 10))
        seen["gl"] = app.probes.last_gl_image
        settle(ctx, app)
        seen["torch"] = (app.eg3d.image.shown.camera_key, app.eg3d.image.shown.rgba.copy())
        spec = app.state.eg3d.latent_spec()
        out, _ = app.eg3d.engine.render_dict(spec, app.state.camera, app.eg3d.settings())
        seen["opacity"] = out["image_opacity"][0, 0].numpy()

    run(app, body)
    (gl_key, gl), (t_key, exact) = seen["gl"], seen["torch"]
    assert gl_key == t_key
    bg = seen["opacity"] <= 0.5
    assert 0.05 < bg.mean() < 0.95, "the head should leave some pixels uncovered"
    assert (exact[..., :3][bg] == 128).all(), "torch depth: uncovered pixels are not the background"
    gl = np.asarray(gl[..., :3])
    from PIL import Image

    gl_small = np.asarray(Image.fromarray(gl).resize(bg.shape[::-1], Image.NEAREST))
    agree = (np.abs(gl_small[bg].astype(int) - 128) <= 1).all(-1).mean()
    assert agree > 0.85, f"GL depth: only {100 * agree:.0f}% of the uncovered pixels show the background"


def test_interpolation_endpoints_match_seeds(tiny_G, tmp_path):
    app = make_app(tiny_G, tmp_path, seed_a=3, seed_b=11, interp_mode="slerp_z")
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        seen["t0"] = app.eg3d.image.shown.rgba.copy()
        ctx.window_focus("//Latent")
        ctx.item_input_value("//Latent/t (A -> B)", 1.0)
        assert app.state.eg3d.t == 1.0
        settle(ctx, app)
        seen["t1"] = app.eg3d.image.shown.rgba.copy()
        ctx.item_input_value("//Latent/t (A -> B)", 0.5)
        settle(ctx, app)
        seen["mid"] = app.eg3d.image.shown.rgba.copy()

    run(app, body)
    a, b = direct_render(tiny_G, 3, app.state.camera), direct_render(tiny_G, 11, app.state.camera)
    assert_close_images(seen["t0"], a)
    assert_close_images(seen["t1"], b)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 5  # the two seeds really differ
    assert np.abs(seen["mid"].astype(int)[..., :3] - a.astype(int)).max() > 2


def test_psi_zero_gives_the_same_image_for_all_seeds(tiny_G, tmp_path):
    app = make_app(tiny_G, tmp_path, seed_a=1)
    imgs = {}

    def body(ctx, app):
        settle(ctx, app)
        imgs["psi07_seed1"] = app.eg3d.image.shown.rgba.copy()
        ctx.window_focus("//Latent")
        ctx.item_input_value("//Latent/truncation psi", 0.0)
        settle(ctx, app)
        imgs["seed1"] = app.eg3d.image.shown.rgba.copy()
        ctx.item_input_value("//Latent/seed A", 987)
        assert app.state.eg3d.seed_a == 987
        settle(ctx, app)
        imgs["seed987"] = app.eg3d.image.shown.rgba.copy()

    run(app, body)
    assert_close_images(imgs["seed1"], imgs["seed987"], tol=0)
    assert np.abs(imgs["psi07_seed1"].astype(int) - imgs["seed1"].astype(int)).max() > 2


def test_save_render_and_save_gui_match_the_viewport(tiny_G, tmp_path):
    from PIL import Image

    app = make_app(tiny_G, tmp_path, save_resolution=32)  # tiny's super-resolved output is 32 px
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        seen["view"] = app.eg3d.image.shown.rgba.copy()
        seen["rect"] = app.image_rect
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/Save render")
        wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, 60, "save render")
        ctx.item_click("//Capture/Save GUI")
        wait(ctx, lambda: bool(app.probes.gui_shots), 10, "save GUI")

    run(app, body)
    job = app.jobs.current
    assert not job.error, job.error
    render = np.asarray(Image.open(job.result_path).convert("RGB"))
    assert Path(job.result_path).name == "render_0001.png"
    assert_close_images(render, seen["view"], tol=1)  # same camera, same settings, same size
    gui = np.asarray(Image.open(app.probes.gui_shots[0]).convert("RGB")).astype(float)
    assert Path(app.probes.gui_shots[0]).name == "gui_0001.png"
    x, y, w, h = (int(round(v)) for v in seen["rect"])
    crop = gui[y + 2 : y + h - 2, x + 2 : x + w - 2]
    ref = np.asarray(Image.fromarray(seen["view"][..., :3]).resize((w, h), Image.BILINEAR)).astype(float)
    ref = ref[2 : h - 2, 2 : w - 2]
    assert np.abs(crop.mean((0, 1)) - ref.mean((0, 1))).max() < 4, (crop.mean((0, 1)), ref.mean((0, 1)))
    assert np.abs(crop.std((0, 1)) - ref.std((0, 1))).max() < 4
    corr = np.corrcoef(crop.mean(-1).ravel(), ref.mean(-1).ravel())[0, 1]
    assert corr > 0.95, f"GUI capture's viewport region does not look like the render (corr {corr:.3f})"


def test_orbit_video_has_requested_frames_and_size(tiny_G, tmp_path):
    import imageio.v2 as imageio

    app = make_app(tiny_G, tmp_path)

    def body(ctx, app):
        settle(ctx, app)
        ctx.window_focus("//Capture")
        ctx.item_input_value("//Capture/frames", 7)
        ctx.item_input_value("//Capture/px##video", 48)
        ctx.item_input_value("//Capture/fps", 12)
        ctx.item_click("//Capture/Orbit video")
        wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, 120, "the orbit video")

    run(app, body)
    job = app.jobs.current
    assert not job.error, job.error
    reader = imageio.get_reader(job.result_path)
    frames = [f for f in reader]
    assert reader.get_meta_data()["fps"] == pytest.approx(12)
    reader.close()
    assert len(frames) == 7
    assert frames[0].shape == (48, 48, 3)
    assert np.abs(frames[0].astype(int) - frames[3].astype(int)).mean() > 1  # the camera really turned


def test_mesh_export_loads_in_trimesh(tiny_G, tmp_path):
    import trimesh

    from tristudio.core.eg3d.bake import bake_grid
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.state import Eg3dState

    eng = GeneratorSession(tiny_G)
    planes, _ = eng.planes(Eg3dState().latent_spec())
    sigma = bake_grid(planes, tiny_G.decoder, 32)[..., 3]
    level = float(sigma.quantile(0.7))  # a level the random field crosses
    app = make_app(tiny_G, tmp_path, mesh_resolution=32, mesh_format="ply")

    def body(ctx, app):
        settle(ctx, app)
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/auto##level")  # off: the level typed below
        ctx.item_input_value("//Capture/density level", level)
        ctx.item_click("//Capture/Export mesh")
        wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, 120, "the mesh export")

    run(app, body)
    job = app.jobs.current
    assert not job.error, job.error
    mesh = trimesh.load(job.result_path, process=False)
    assert len(mesh.vertices) > 100 and len(mesh.faces) > 100
    assert mesh.visual.vertex_colors.shape == (len(mesh.vertices), 4)
    print(f"mesh: {len(mesh.vertices)} vertices, watertight={mesh.is_watertight}")
    assert job.extra["watertight"] == mesh.is_watertight
    assert app.state.eg3d.mesh_auto is False and job.extra["level"] == pytest.approx(level)
    assert mesh.is_watertight  # the grid is padded, so the surface closes at the box


def test_load_error_and_worker_error_are_shown_and_the_app_lives_on(tiny_G, tmp_path):
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"not a pickle at all")
    app = make_app(tiny_G, tmp_path)
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        ctx.window_focus("//Model")
        ctx.item_input_value("//Model/##path", str(bad))
        ctx.item_click("//Model/Load")
        wait(ctx, lambda: bool(app.state.eg3d.model_error), 30, "the load error")
        seen["model_error"] = app.state.eg3d.model_error
        # A render worker that raises: the error is drawn over the viewport, the app keeps going.
        real = app.eg3d.engine.render

        def boom(*a, **k):
            raise RuntimeError("synthetic render failure")

        app.eg3d.engine.render = boom
        app.state.eg3d.seed_a = 5
        wait(ctx, lambda: any("synthetic render failure" in e for e in app.probes.drawn_errors), 30, "the worker error")
        seen["frames_advanced"] = frames_over_yields(ctx, app)
        app.eg3d.engine.render = real
        app.state.eg3d.seed_a = 6
        settle(ctx, app)
        seen["recovered"] = app.probes.drawn_errors == [] and app.eg3d.image.shown.latent.seed_a == 6

    run(app, body)
    assert "broken.pkl" in seen["model_error"]
    assert app.eg3d.engine.name == "tiny"  # the failed load left the current model in place
    assert seen["frames_advanced"] >= 5
    assert seen["recovered"]


def test_model_panel_loads_an_eg3d_model_and_frames_it_on_its_own_centre(tiny_G, tmp_path):
    """The success path of Load: the new model replaces the old, the camera orbits the new model's content centre
    (measured in the loader thread, not on the GUI thread) and the viewport shows the new model's render."""
    from tristudio.core.eg3d.load import save_generator
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.model import random_model

    other = random_model("tiny", seed=3)
    folder = save_generator(other, tmp_path / "other_model")
    app = make_app(tiny_G, tmp_path)
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        seen["pivot_before"] = app.state.camera.pivot
        ctx.window_focus("//Model")
        ctx.item_input_value("//Model/##path", str(folder))
        ctx.item_click("//Model/Load")
        wait(ctx, lambda: app.eg3d.engine.name == str(folder), 60, "the new model")
        settle(ctx, app)
        seen["error"] = app.state.eg3d.model_error
        seen["camera"] = app.state.camera.copy()
        seen["shown"] = app.eg3d.image.shown.rgba.copy()
        seen["G"] = app.eg3d.engine.G

    run(app, body)
    assert seen["error"] == ""
    centre = GeneratorSession(seen["G"]).content_centre()
    assert np.allclose(seen["camera"].pivot, centre, atol=1e-4), (seen["camera"].pivot, centre)
    assert not np.allclose(seen["pivot_before"], centre, atol=1e-3)  # a different model, a different centre
    assert_close_images(seen["shown"], direct_render(seen["G"], 0, seen["camera"], psi=app.state.eg3d.psi))


def test_model_panel_opens_a_diffusers_folder_as_the_dreamfusion_prior(tiny_G, tmp_path):
    from tristudio.core.priors.testing import build_tiny_pixel_prior

    good = build_tiny_pixel_prior(tmp_path / "prior")
    broken = tmp_path / "broken_prior"
    shutil.copytree(good, broken)
    shutil.rmtree(broken / "unet")
    app = make_app(tiny_G, tmp_path)
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        ctx.window_focus("//Model")
        ctx.item_input_value("//Model/##path", str(broken))
        ctx.item_click("//Model/Load")
        wait(ctx, lambda: bool(app.state.eg3d.model_error), 30, "the broken prior's error")
        seen["broken"] = (app.state.eg3d.model_error, app.state.scene, app.state.dreamfusion.prior_path)
        ctx.item_input_value("//Model/##path", str(good))
        ctx.item_click("//Model/Load")
        wait(ctx, lambda: app.state.scene == "dreamfusion", 30, "the switch to the DreamFusion scene")
        seen["good"] = (app.state.eg3d.model_error, app.state.dreamfusion.prior_path, app.eg3d.engine.name)

    run(app, body)
    error, scene, prior_path = seen["broken"]
    assert "unet" in error and scene == "eg3d" and prior_path != str(broken)
    error, prior_path, model = seen["good"]
    assert error == "" and prior_path == str(good) and model == "tiny"  # the EG3D model stays in place


def test_scene_switch_radius_limits_and_capture_message(tiny_G, tmp_path):
    """Switch to the DreamFusion scene and back; the radius slider and the wheel stay within the scene's range (a
    typed value too); a capture with no DreamFusion object says why in red; nothing lands in the error list."""
    app = make_app(tiny_G, tmp_path)
    seen = {}

    def body(ctx, app):
        settle(ctx, app)
        ctx.window_focus("//DreamFusion")
        ctx.item_click("//DreamFusion/DreamFusion")
        for _ in range(3):
            ctx.yield_()
        seen["scene"] = app.state.scene
        ctx.window_focus("//Render")
        for _ in range(3):
            ctx.yield_()
        ctx.item_input_value("//Render/radius", 100.0)
        seen["radius"] = app.state.camera.radius
        ctx.window_focus("//Capture")
        for _ in range(3):
            ctx.yield_()
        ctx.item_click("//Capture/Save render")
        for _ in range(3):
            ctx.yield_()
        seen["msg"] = app.state.capture.message
        ctx.window_focus("//DreamFusion")
        ctx.item_click("//DreamFusion/EG3D")
        settle(ctx, app)
        seen["back"] = app.state.scene
        ctx.mouse_move("//Viewport/##canvas")
        ctx.mouse_wheel((0, -20))
        for _ in range(3):
            ctx.yield_()
        seen["eg3d_radius"] = (app.state.camera.radius, app.state.camera.radius_range)
        seen["errors"] = list(app.state.errors)

    run(app, body)
    assert seen["scene"] == "dreamfusion" and seen["back"] == "eg3d"
    assert seen["radius"] <= 5.4 + 1e-6
    assert seen["msg"] is not None and seen["msg"].error
    r, (lo, hi) = seen["eg3d_radius"]
    assert abs(r - hi) < 1e-6, seen["eg3d_radius"]
    assert not seen["errors"], seen["errors"]
