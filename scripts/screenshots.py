"""Regenerate screenshots/*.png of the real viewer (EG3D orbit, latent panel, capture panel, DreamFusion training
with its loss plot) under X.

    python scripts/screenshots.py [--out screenshots] [--preset small] [--df-steps 40]

DreamFusion uses the shipped small-world prior when it is there; otherwise a tiny random test prior is built in a
temporary folder (the object is then noise, and the panel says so).

Without a DISPLAY it re-runs itself under `xvfb-run -a`. The app is driven by imgui's test engine; each shot is the
whole window read back with glReadPixels (the viewer's own "Save GUI")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer


def main(
    out: Path = typer.Option(Path("screenshots"), help="where the PNGs go"),
    preset: str = typer.Option("small", help="random-init preset when no model is shipped"),
    timeout: float = typer.Option(300.0, help="longest wait for any one step (seconds)"),
    df_steps: int = typer.Option(200, help="DreamFusion steps before the training screenshot"),
) -> None:
    """Regenerate screenshots/*.png of the real viewer."""
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            typer.echo("screenshots: no DISPLAY and no xvfb-run", err=True)
            raise typer.Exit(2)
        raise typer.Exit(subprocess.call(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, *sys.argv]))

    import tempfile

    from imgui_bundle.immapp import testing

    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.dreamfusion import default_prior_path
    from tristudio.viewer.scripted import wait_until as _wait
    from tristudio.viewer.state import CaptureState, DreamFusionState, Eg3dState, ViewerState

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tristudio-shots-"))
    df = DreamFusionState(prompt="a red cube", view_resolution=128)  # steps: core's DreamFusionConfig default
    if not default_prior_path():
        from tristudio.core.priors.testing import build_tiny_pixel_prior

        df.prior_path = str(build_tiny_pixel_prior(tmp / "tiny_prior"))
        df.note = "no shipped prior yet: a tiny random test prior (the object is noise)"
        df.resolution = 32
        df.extra = dict(plane_resolution=32, plane_channels=8, hidden=16)
    state = ViewerState(
        eg3d=Eg3dState(seed_a=2, seed_b=7), dreamfusion=df, capture=CaptureState(capture_dir=str(out / "_captures"))
    )
    app = ViewerApp(preset=preset, state=state, window_size=(1100, 720))

    def shot(ctx, name):
        path = out / f"{name}.png"
        n = len(app.probes.gui_shots)
        app.captures.gui_shot_request = path
        _wait(ctx, lambda: len(app.probes.gui_shots) > n, 30, f"the {name} capture")
        print(f"wrote {path}")

    def settle(ctx):
        _wait(ctx, app.settled, timeout, "a full-quality frame")
        for _ in range(3):
            ctx.yield_()

    def body(ctx):
        settle(ctx)
        _wait(ctx, app.eg3d.grid_ready, timeout, "the baked grid of the GL fast path")
        ctx.item_drag_with_delta("//Viewport/##canvas", (-110, -12))  # a three-quarter view (~30 deg)
        settle(ctx)
        shot(ctx, "eg3d_orbit")
        ctx.window_focus("//Latent")
        ctx.item_input_value("//Latent/t (A -> B)", 0.5)
        settle(ctx)
        shot(ctx, "latent_panel")
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/Save render")
        _wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, timeout, "save render")
        ctx.window_focus("//Render")
        ctx.yield_()
        ctx.window_focus("//Capture")
        ctx.scroll_to_bottom("//Capture")  # the job's message under the buttons
        settle(ctx)
        shot(ctx, "capture_panel")
        # DreamFusion: Start, let it train, orbit a little, shoot with the loss plot (Training tab) in view.
        ctx.window_focus("//DreamFusion")
        ctx.item_click("//DreamFusion/Start")
        sess = app.dreamfusion.session
        _wait(ctx, lambda: sess.step_count >= df_steps or sess.worker.error, timeout, "DreamFusion steps")
        if sess.worker.error:
            raise RuntimeError(f"screenshots: DreamFusion failed: {sess.worker.error}")
        ctx.item_drag_with_delta("//Viewport/##canvas", (-110, -25))
        step = sess.step_count
        image = app.dreamfusion.image
        _wait(
            ctx,
            lambda: (
                image.shown is not None
                and image.shown.full
                and image.shown.extra.get("step", -1) >= step
                and image.pending is None
            ),
            timeout,
            "a DreamFusion frame",
        )
        for _ in range(3):
            ctx.yield_()
        shot(ctx, "dreamfusion_training")
        app.dreamfusion.stop()

    def relax_watchdog():  # the test engine aborts a test after 60 s; DreamFusion steps take longer on a CPU
        from imgui_bundle import hello_imgui, imgui

        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
        io.config_watchdog_warning, io.config_watchdog_kill_test = 4 * timeout, 8 * timeout
        io.config_watchdog_kill_app = 10 * timeout

    rp = app.runner_params()
    rp.callbacks.register_tests = relax_watchdog
    try:
        testing.run(runner_params=rp, test_function=body)
    finally:
        shutil.rmtree(out / "_captures", ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
