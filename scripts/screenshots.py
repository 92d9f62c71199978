"""Regenerate screenshots/*.png of the real viewer (EG3D orbit, latent panel, capture panel) under X.

    python scripts/screenshots.py [--out screenshots] [--preset small]

Without a DISPLAY it re-runs itself under `xvfb-run -a`. The app is driven by imgui's test engine; each shot is the
whole window read back with glReadPixels (the viewer's own "Save GUI")."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _wait(ctx, cond, timeout, what):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        ctx.yield_()
        if cond():
            return
        time.sleep(0.01)
    raise TimeoutError(f"screenshots: timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="screenshots")
    ap.add_argument("--preset", default="small", help="random-init preset when no model is shipped")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            print("screenshots: no DISPLAY and no xvfb-run", file=sys.stderr)
            return 2
        return subprocess.call(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, *sys.argv])

    from imgui_bundle.immapp import testing
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.state import ViewerState

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = ViewerApp(preset=args.preset, state=ViewerState(capture_dir=str(out / "_captures"), seed_a=2, seed_b=7),
                    window_size=(1100, 720))

    def shot(ctx, name):
        path = out / f"{name}.png"
        n = len(app.gui_shot_done)
        app.gui_shot_request = path
        _wait(ctx, lambda: len(app.gui_shot_done) > n, 30, f"the {name} capture")
        print(f"wrote {path}")

    def settle(ctx):
        _wait(ctx, app.settled, args.timeout, "a full-quality frame")
        for _ in range(3):
            ctx.yield_()

    def body(ctx):
        settle(ctx)
        ctx.item_drag_with_delta("//Viewport/##canvas", (-70, -25))
        settle(ctx)
        shot(ctx, "eg3d_orbit")
        ctx.window_focus("//Latent")
        ctx.item_input_value("//Latent/t (A -> B)", 0.5)
        settle(ctx)
        shot(ctx, "latent_panel")
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/Save render")
        _wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, args.timeout, "save render")
        ctx.window_focus("//Render")
        ctx.yield_()
        ctx.window_focus("//Capture")
        settle(ctx)
        shot(ctx, "capture_panel")

    testing.run(runner_params=app.runner_params(), test_function=body)
    shutil.rmtree(out / "_captures", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
