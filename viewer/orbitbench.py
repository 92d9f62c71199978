"""GUI frame rate while orbiting an EG3D model, and the time to the full-quality frame after the camera stops, for
`tristudio bench viewer` (a subprocess, so core/ never imports the GUI): the real viewer app (needs X: DISPLAY or
xvfb-run), EG3D scene, one JSON line.

    tristudio bench orbit-frames [--model auto|PATH] [--seconds 6] [--size 1100x720] [--stops 5]   (hidden)

Phases: `bake` (until the baked grid for the GL fast path is on the GPU side and a full frame is shown), `orbiting`
(the camera turns every frame as a left-drag of 6 px would; fps = the app's frame-loop iterations over wall time,
`gl_share` = the share of those frames the GL ray-march drew, `cpu_ms_per_frame` = the process's CPU time per
frame), then `stops` times: orbit 0.5 s, let go, and time until the viewport shows the full-quality torch frame of
the final camera (`rest_ms` of stillness + the render).
Model: the shipped heads model when present (auto), else a random-init `small` generator (said in the output).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time


def measure(
    model: str = "auto", seconds: float = 6.0, size: str = "1100x720", stops: int = 5, timeout: float = 300.0
) -> dict:
    """The phases above; `seconds`: the orbiting phase, `timeout`: the longest wait for the grid bake."""
    if not os.environ.get("DISPLAY"):
        raise RuntimeError("no DISPLAY (run under xvfb-run -a)")
    w, h = (int(v) for v in size.lower().split("x"))

    from imgui_bundle import hello_imgui

    from .app import ViewerApp
    from .state import CaptureState, ViewerState

    state = ViewerState(capture=CaptureState(capture_dir=tempfile.mkdtemp(prefix="tristudio-orbitbench-")))
    app = ViewerApp(model_path=None if model == "auto" else model, state=state, window_size=(w, h))
    scene = app.eg3d
    model_kind = "shipped heads model" if not scene.engine.banner else "random-init small (no shipped model)"
    rp = app.runner_params()
    frame_loop = rp.callbacks.pre_new_frame
    run: dict = {"phase": "bake", "t0": None, "f0": 0, "g0": 0, "stop": 0, "let_go": None}
    results: dict = {"to_full_ms": []}

    def full_shown() -> bool:
        f = scene.image.shown
        return scene.shown_kind == "torch" and f is not None and f.full and f.camera_key == app.state.camera.key()

    def begin(phase: str, now: float) -> None:
        run.update(phase=phase, t0=now, f0=app.probes.frames, g0=app.probes.gl_frames, cpu0=time.process_time())

    def driver() -> None:
        now = time.perf_counter()
        if run["t0"] is None:
            begin("bake", now)
        phase = run["phase"]
        if phase == "bake":
            if scene.grid_ready() and full_shown():
                results["bake_s"] = now - run["t0"]
                begin("orbiting", now)
            elif now - run["t0"] > timeout:
                results["error"] = "the grid bake did not finish in time"
                hello_imgui.get_runner_params().app_shall_exit = True
        elif phase == "orbiting":
            app.state.camera.orbit(6.0, 0.0)
            if now - run["t0"] >= seconds:
                dt = now - run["t0"]
                frames = app.probes.frames - run["f0"]
                results["orbiting"] = {
                    "fps": frames / dt,
                    "gl_share": (app.probes.gl_frames - run["g0"]) / max(frames, 1),
                    "seconds": dt,
                    # CPU time of the whole process (all threads, llvmpipe's included) per frame: what a frame costs
                    # whatever else the machine runs (fps alone falls with the load average)
                    "cpu_ms_per_frame": 1000 * (time.process_time() - run["cpu0"]) / max(frames, 1),
                }
                begin("stop-orbit", now)
        elif phase == "stop-orbit":
            app.state.camera.orbit(6.0, 0.0)
            if now - run["t0"] >= 0.5:
                run["let_go"] = now
                begin("stop-wait", now)
        elif phase == "stop-wait":
            if full_shown():
                results["to_full_ms"].append((now - run["let_go"]) * 1000)
                run["stop"] += 1
                if run["stop"] >= stops:
                    hello_imgui.get_runner_params().app_shall_exit = True
                else:
                    begin("stop-orbit", now)
            elif now - run["t0"] > 30:
                results["error"] = "no full-quality frame 30 s after the camera stopped"
                hello_imgui.get_runner_params().app_shall_exit = True
        frame_loop()

    rp.callbacks.pre_new_frame = driver
    hello_imgui.run(rp)
    ms = results.pop("to_full_ms")
    if ms:
        results["to_full_quality"] = {
            "ms_median": statistics.median(ms),
            "ms_max": max(ms),
            "n": len(ms),
            "rest_ms": app.state.rest_ms,
        }
    results.update(
        {
            "model": model_kind,
            "window": f"{w}x{h}",
            "gl_resolution": scene.gl_resolution,
            "grid": app.state.eg3d.grid_resolution,
            "neural_resolution": scene.full_resolution,
            "device": scene.engine.device.type,
            "threads": app.threads,
            "load_average": os.getloadavg()[0],
        }
    )
    return results
