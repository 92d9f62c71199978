"""GUI frame rate while DreamFusion trains, for `tristudio bench viewer` (a subprocess, so core/ never imports GUI):
the real viewer app (needs X: DISPLAY or xvfb-run), DreamFusion scene, three timed phases, one JSON line.

    tristudio bench train-frames [--prior auto|PATH] [--seconds 8] [--size 1100x720] [--guidance sds]   (hidden)

Phases: `idle` (no optimisation, GUI uncapped), `training` (the optimiser runs, the GUI caps itself at df_fps_cap),
`orbiting` (the camera turns every frame as in a drag, while training: the optimiser holds, the GUI is uncapped;
`held_fraction` is the share of the phase the optimiser slept, the step in flight when it began still finishes).
Frames are the app's own frame loop iterations over wall time. Prior: the shipped small-world prior when present
(auto), else a tiny random test prior built in a temporary folder (said in the output).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def measure(
    prior: str = "auto", seconds: float = 8.0, size: str = "1100x720", guidance: str = "sds", timeout: float = 300.0
) -> dict:
    """The phases above; `seconds`: the training phase (idle and orbit: half), `timeout`: the longest wait for the
    first step."""
    if not os.environ.get("DISPLAY"):
        raise RuntimeError("no DISPLAY (run under xvfb-run -a)")
    w, h = (int(v) for v in size.lower().split("x"))

    from imgui_bundle import hello_imgui

    from .app import ViewerApp
    from .dreamfusion import default_prior_path, training_threads
    from .state import CaptureState, DreamFusionState, ViewerState

    tmp = Path(tempfile.mkdtemp(prefix="tristudio-trainbench-"))
    prior_kind = "given"
    if prior == "auto":
        prior, prior_kind = default_prior_path(), "shipped"
        if not prior:
            from tristudio.core.priors.testing import build_tiny_pixel_prior

            prior, prior_kind = str(build_tiny_pixel_prior(tmp / "tiny_prior")), "tiny random test prior"
    state = ViewerState(
        scene="dreamfusion",
        dreamfusion=DreamFusionState(prior_path=str(prior), guidance=guidance, steps=10**6),
        capture=CaptureState(capture_dir=str(tmp / "captures")),
    )
    app = ViewerApp(state=state, window_size=(w, h))
    rp = app.runner_params()
    frame_loop = rp.callbacks.pre_new_frame
    phases = [
        ("warmup", 1.0),
        ("idle", seconds / 2),
        ("start", timeout),
        ("training", seconds),
        ("orbiting", seconds / 2),
    ]
    run = {"i": 0, "t0": None, "f0": 0, "s0": 0, "h0": 0.0}
    results: dict = {}

    df = app.dreamfusion

    def steps() -> int:
        return df.session.step_count if df.session is not None else 0

    def held() -> float:
        return df.session.worker.held_s if df.session is not None else 0.0

    def begin(now: float) -> None:
        run["t0"], run["f0"], run["s0"], run["h0"] = now, app.probes.frames, steps(), held()
        if phases[run["i"]][0] == "start":
            df.start()

    def driver() -> None:
        now = time.perf_counter()
        if run["t0"] is None:
            begin(now)
        name, length = phases[run["i"]]
        if name == "orbiting":
            app.state.camera.orbit(6.0, 0.0)  # as a left-drag of 6 px per frame
        done = now - run["t0"] >= length
        if name == "start":  # until the prior is loaded and the first steps are done
            sess = df.session
            if sess.worker.error:
                results["error"] = sess.worker.error
                hello_imgui.get_runner_params().app_shall_exit = True
            done = steps() >= 2 or done
        if done:
            dt = now - run["t0"]
            if name in ("idle", "training", "orbiting"):
                results[name] = {
                    "fps": (app.probes.frames - run["f0"]) / dt,
                    "steps_per_s": (steps() - run["s0"]) / dt,
                    "seconds": dt,
                    "held_fraction": (held() - run["h0"]) / dt,
                }
            run["i"] += 1
            if run["i"] == len(phases):
                hello_imgui.get_runner_params().app_shall_exit = True
            else:
                begin(now)
        frame_loop()

    rp.callbacks.pre_new_frame = driver
    try:
        hello_imgui.run(rp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results.update(
        {
            "prior": prior_kind,
            "window": f"{w}x{h}",
            "fps_cap": state.dreamfusion.fps_cap,
            "guidance": guidance,
            "training_threads": training_threads(),
            "load_average": os.getloadavg()[0],
        }
    )
    return results
