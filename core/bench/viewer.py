"""Viewer responsiveness with the `small` preset (random weights; speed does not depend on them).

Rows:
  torch interactive frame   the reduced frame torch renders while the camera moves (raw image, 64 px floor)
  torch full-quality frame  time from "camera stopped" to the finished full-quality frame (planes cached:
                            render + super-resolution + conversion), goal < 0.5 s on CPU
  synthesis (latent change) mapping + tri-plane synthesis, paid once per latent (cached per seed/psi/t)
  bake grid                 baking the field into the GL grid (background, once per latent)
  GL baked-grid frame       ray-marching that grid in GLSL; measured in a subprocess with a hidden glfw window
                            (needs X: DISPLAY or xvfb-run); the row says why when it cannot run
  GUI fps while orbiting    the real app orbiting the shipped EG3D model (GL fast path), and the time from letting go
                            of the camera to the full-quality torch frame on screen; goals >= 20 fps, < 0.5 s
  GUI fps while SDS trains  the real app's frame loop over wall time in the DreamFusion scene: idle, while SDS
                            trains in the background thread (the GUI caps itself), and while the camera orbits during
                            training (the optimiser holds); with the shipped prior, else a tiny random test prior
core/ never imports GL or the GUI: those rows come from the hidden commands `tristudio bench gl-frames`,
`orbit-frames` and `train-frames` (tristudio.viewer.glbench / orbitbench / trainbench) in subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import torch

from .common import resolve_device, time_call

TITLE = "Viewer: interactive and full-quality frame times (small preset)"


def _gl_row(grid: int, size: int, frames: int) -> dict:
    r = _gui_json(
        "gl-frames",
        "--preset",
        "small",
        "--grid",
        str(grid),
        "--size",
        str(size),
        "--frames",
        str(frames),
    )
    if "error" in r:
        return {"what": f"GL baked-grid frame {size} px", "note": r["error"]}
    return {
        "what": f"GL baked-grid frame {size} px, grid {grid}^3, {r['samples']} samples",
        "ms_median": r["ms_median"],
        "ms_min": r["ms_min"],
        "fps": 1000 / r["ms_median"],
        "note": f"{r['renderer']}; first draw {r['first_draw_ms']:.0f} ms (shader compile)",
    }


def _gui_json(command: str, *args: str) -> dict:
    """Run the hidden GUI bench command `tristudio bench <command>` in a subprocess (under xvfb-run without a display)
    and return its JSON line, or {"error": why} when it cannot run or fails."""
    cmd = [sys.executable, "-m", "tristudio.cli", "bench", command, *args]
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            return {"error": "skipped: no DISPLAY and no xvfb-run"}
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    except Exception as exc:
        return {"error": f"failed: {exc}"}


def _orbit_rows(seconds: float, stops: int) -> list[dict]:
    r = _gui_json("orbit-frames", "--seconds", str(seconds), "--stops", str(stops))
    if "error" in r:
        return [{"what": "GUI fps while orbiting the shipped model", "note": r["error"]}]
    note = (
        f"{r['model']}, window {r['window']}, GL {r['gl_resolution']} px over a {r['grid']}^3 grid, "
        f"{r['device']}, load average {r['load_average']:.1f}"
    )
    rows = [
        {
            "what": f"GUI fps while orbiting (GL fast path drew {100 * r['orbiting']['gl_share']:.0f}% of frames)",
            "fps": r["orbiting"]["fps"],
            "goal_fps": 20,
            "meets_goal": r["orbiting"]["fps"] >= 20,
            "cpu_ms_per_frame": r["orbiting"].get("cpu_ms_per_frame"),
            "note": note,
        }
    ]
    if "to_full_quality" in r:
        q = r["to_full_quality"]
        rows.append(
            {
                "what": f"camera stops -> full-quality frame on screen (rest {q['rest_ms']:.0f} ms + render)",
                "ms_median": q["ms_median"],
                "ms_max": q["ms_max"],
                "goal_ms": 500,
                "meets_goal": q["ms_median"] < 500,
                "note": f"{q['n']} stops; {note}",
            }
        )
    return rows


def _training_rows(seconds: float) -> list[dict]:
    r = _gui_json("train-frames", "--seconds", str(seconds))
    if "error" in r:
        return [{"what": "GUI fps while SDS trains", "note": r["error"]}]
    note = (
        f"{r['prior']}, window {r['window']}, optimiser on {r['training_threads']} thread(s), "
        f"load average {r['load_average']:.1f}"
    )
    labels = {
        "idle": "GUI fps, DreamFusion scene, nothing training",
        "training": f"GUI fps while SDS trains (cap {r['fps_cap']:.0f} fps)",
        "orbiting": "GUI fps while orbiting during SDS (optimiser holds)",
    }
    return [
        {
            "what": labels[k],
            "fps": r[k]["fps"],
            "steps_per_s": r[k]["steps_per_s"],
            "held_fraction": r[k].get("held_fraction", 0.0),
            "note": note,
        }
        for k in ("idle", "training", "orbiting")
        if k in r
    ]


def run(device: str = "auto", quick: bool = False) -> list[dict]:
    """The viewer's torch work, through the same core calls its render worker makes (core/ does not import the
    viewer): G.mapping + G.synthesis_planes per latent, G.render_planes(deterministic=True) per camera."""
    from ..cameras import Cameras
    from ..eg3d.bake import bake_grid
    from ..eg3d.generator import TriPlaneGenerator
    from ..eg3d.presets import preset

    dev = resolve_device(device)
    torch.manual_seed(0)
    G = TriPlaneGenerator(**preset("small")).eval().requires_grad_(False).to(dev)
    repeat = 3 if quick else 7
    rk = G.rendering_kwargs
    pivot, radius = tuple(rk["avg_camera_pivot"]), float(rk["avg_camera_radius"])
    z = torch.randn(1, G.z_dim, device=dev)
    c = Cameras.orbit(0.0, 0.0, radius, 18.837, pivot).label().to(dev)
    state = {"yaw": 0.0}
    rows = []

    @torch.no_grad()
    def synth():
        ws = G.mapping(z, c, truncation_psi=0.7)
        state["planes"], state["ws"] = G.synthesis_planes(ws), ws

    t = time_call(synth, dev, warmup=1, repeat=2 if quick else 3)
    rows.append({"what": "synthesis (latent change)", **t})

    def frame(res, run_superres):
        @torch.no_grad()
        def fn():
            state["yaw"] += 0.05  # a new camera each call: nothing cached but the planes
            cam = Cameras.orbit(state["yaw"], 0.1, radius, 18.837, pivot).to(dev)
            out = G.render_planes(state["planes"], state["ws"], cam, res, deterministic=True, run_superres=run_superres)
            key = "image" if run_superres else "image_raw"
            ((out[key][0].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()

        return fn

    t = time_call(frame(64, False), dev, repeat=repeat)
    rows.append({"what": "torch interactive frame (raw, 64 px)", **t, "fps": 1000 / t["ms_median"]})
    nr, ns = G.neural_rendering_resolution, int(rk["depth_resolution"])
    t = time_call(frame(None, True), dev, repeat=repeat)
    rows.append(
        {
            "what": f"torch full-quality frame (final, neural {nr} px, {ns}+{ns} samples)",
            **t,
            "fps": 1000 / t["ms_median"],
            "goal_ms": 500,
            "meets_goal": t["ms_median"] < 500,
        }
    )
    if not quick:
        t = time_call(frame(128, False), dev, repeat=3)
        rows.append({"what": "torch raw 128 px", **t})
    grid = 64 if quick else 96

    @torch.no_grad()
    def bake():
        bake_grid(state["planes"], G.decoder, grid)

    t = time_call(bake, dev, warmup=0, repeat=1 if quick else 2)
    rows.append({"what": f"bake grid {grid}^3 (background)", **t})
    rows.append(_gl_row(grid, 256, 10 if quick else 30))
    rows.extend(_orbit_rows(3.0 if quick else 8.0, 3 if quick else 7))
    rows.extend(_training_rows(4.0 if quick else 10.0))
    return rows
