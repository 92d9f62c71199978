"""Why tri-planes: fit one procedural object with the original NeRF MLP, a dense feature grid and tri-planes.

Every representation gets the same training views, rays per step, samples per ray, loss (MSE on RGB), renderer and
optimiser family (Adam; learning rates per representation, core/fitting/loop.py), and the same budget of training
compute. Measured per representation:

- held-out PSNR and depth error (vs the sphere-traced ground truth, on its mask) along the run and at the end;
- time: *thread CPU time* inside the optimisation steps (one intra-op thread), the clock the budget and the
  time-to-PSNR-X use, because tristudio's CPU machines are shared and wall time there mostly measures the other
  processes (wall time is reported too). Evaluation time is excluded from both clocks;
- parameter count; memory two ways: `state_MB` = 16 bytes per parameter (fp32 weights + gradient + Adam's two
  moments, computed), and `peak_rss_MB` = the process's peak resident set size while fitting (psutil, sampled every
  2 ms by a thread) minus its RSS before the field was built: parameters, optimiser state and activations, as the OS
  sees them (torch keeps no allocator statistics on CPU; tracemalloc does not see its allocations);
- time-to-PSNR-X: the first CPU time at which the held-out curve reaches X dB (linear between evaluations), for fixed
  targets and for X* = the highest PSNR both the MLP and the tri-planes reach (rounded down to 0.5 dB); and the
  MLP / tri-plane ratios (parameters, memory, time per step, time to X).

Writes the PSNR-over-time plot (PIL, no matplotlib) as bench/representations.png and the curves as
bench/representations_curves.json (folder: $TRISTUDIO_BENCH_DIR, default bench/, where the CLI writes the table's
JSON by default).
"""

from __future__ import annotations

import gc
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..fitting.loop import FitConfig, Fitter
from ..fitting.views import render_views
from ..io.atomic import atomic_path, atomic_write_text

TITLE = "Why tri-planes: NeRF MLP vs dense grid vs tri-planes fitting one object (held-out PSNR / depth vs CPU time)"

SCENE = "object:torus/orange/matte"
REPRESENTATIONS = ("mlp", "grid", "triplane")
FIXED_TARGETS_DB = (15.0, 18.0)


@dataclass(frozen=True)
class BenchSize:
    """How much each representation gets: CPU budget, training / held-out views and their sizes, rays and samples."""

    budget_cpu_s: float = 60.0
    train_views: int = 24
    resolution: int = 64  # training views' size
    curve_views: int = 2  # held-out views for the PSNR-vs-time curve ...
    curve_res: int = 32
    final_views: int = 3  # ... and for the final row
    final_res: int = 48
    rays: int = 128  # per step
    samples: int = 16  # coarse = importance samples per ray


QUICK = BenchSize(
    budget_cpu_s=8.0,
    train_views=12,
    resolution=32,
    curve_views=1,
    curve_res=24,
    final_views=2,
    final_res=32,
    samples=12,
)
SETTINGS = {False: asdict(BenchSize()), True: asdict(QUICK)}
CURVE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1.0)  # evaluation points, fractions of the budget
COLORS = {"mlp": (214, 39, 40), "grid": (31, 119, 180), "triplane": (44, 160, 44)}


class _PeakRSS:
    """Peak resident set size of this process, sampled by a background thread."""

    def __init__(self, interval_s: float = 0.002):
        import psutil

        self._proc, self._interval, self.peak = psutil.Process(), interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def rss(self) -> int:
        return self._proc.memory_info().rss

    def __enter__(self):
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _time_to(curve: list[dict], target: float) -> float | None:
    """CPU seconds at which the held-out PSNR first reaches `target` (linear between evaluations; None if never)."""
    prev_t, prev_p = 0.0, -math.inf
    for point in curve:
        t, p = point["cpu_s"], point["psnr"]
        if p >= target:
            if not math.isfinite(prev_p) or p == prev_p:
                return t
            return prev_t + (target - prev_p) / (p - prev_p) * (t - prev_t)
        prev_t, prev_p = t, p
    return None


def _fit_one(representation: str, s: dict, train, curve_views, final_views) -> dict:
    gc.collect()
    config = FitConfig(
        representation=representation,
        steps=10**9,
        rays_per_step=s["rays"],
        depth_resolution=s["samples"],
        depth_resolution_importance=s["samples"],
    )
    with _PeakRSS() as mem:
        base = mem.rss()
        fitter = Fitter(config, train)
        curve = []
        for frac in CURVE_FRACTIONS:
            while fitter.train_cpu < frac * s["budget_cpu_s"]:
                fitter.step()
            ev = fitter.evaluate(curve_views)
            curve.append(
                {
                    "step": fitter.step_count,
                    "cpu_s": fitter.train_cpu,
                    "wall_s": fitter.train_time,
                    "psnr": ev["psnr"],
                    "depth_mae": ev["depth_mae"],
                }
            )
    final = fitter.evaluate(final_views)
    n = fitter.n_parameters
    out = {
        "representation": representation,
        "params": n,
        "state_MB": round(16 * n / 2**20, 1),
        "peak_rss_MB": round((mem.peak - base) / 2**20, 1),
        "lr": f"{config.lr:g}" + ("" if config.feature_lr is None else f"/{config.feature_lr:g}"),
        "steps": fitter.step_count,
        "cpu_ms_per_step": round(1000 * fitter.train_cpu / fitter.step_count, 1),
        "cpu_s": round(fitter.train_cpu, 1),
        "wall_s": round(fitter.train_time, 1),
        "psnr": round(final["psnr"], 2),
        "depth_mae": round(final["depth_mae"], 4),
        "curve": curve,
    }
    del fitter
    gc.collect()
    return out


def run(device: str = "cpu", quick: bool = False) -> list[dict]:
    if torch.device(device).type != "cpu":
        raise RuntimeError("bench representations measures CPU fitting (thread CPU time); run it with --device cpu")
    s = SETTINGS[bool(quick)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one intra-op thread: stable on shared cores, and thread CPU time is all the work
    try:
        train = render_views(SCENE, s["train_views"], s["resolution"])
        curve_views = render_views(SCENE, s["curve_views"], s["curve_res"], held_out=True)
        final_views = render_views(SCENE, s["final_views"], s["final_res"], held_out=True)
        results = [_fit_one(r, s, train, curve_views, final_views) for r in REPRESENTATIONS]
    finally:
        torch.set_num_threads(threads)
    best = {r["representation"]: max(p["psnr"] for p in r["curve"]) for r in results}
    common = math.floor(2 * min(best["mlp"], best["triplane"])) / 2
    rows = []
    for r in results:
        row = {k: v for k, v in r.items() if k != "curve"}
        for x in FIXED_TARGETS_DB:
            t = _time_to(r["curve"], x)
            row[f"t_to_{x:g}dB"] = None if t is None else round(t, 1)
        t = _time_to(r["curve"], common)
        row[f"t_to_X*({common:g})"] = None if t is None else round(t, 1)
        rows.append(row)
    by = {r["representation"]: r for r in rows}
    ratio = {"representation": "mlp / triplane"}
    for key in by["mlp"]:
        if key in ("params", "state_MB", "peak_rss_MB", "cpu_ms_per_step") or key.startswith("t_to_"):
            ratio[key] = _ratio(by["mlp"][key], by["triplane"][key])
    rows.append(ratio)
    folder = Path(os.environ.get("TRISTUDIO_BENCH_DIR", "bench"))
    curves = {"scene": SCENE, "settings": s, "X*": common, "curves": {r["representation"]: r["curve"] for r in results}}
    atomic_write_text(folder / "representations_curves.json", json.dumps(curves, indent=2))
    with atomic_path(folder / "representations.png") as tmp:
        plot_curves(curves["curves"], f"{SCENE}: held-out PSNR vs training CPU time", common).save(tmp, format="PNG")
    return rows


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


# ----------------------------------------------------------------------------- the plot (PIL only)


def plot_curves(curves: dict[str, list[dict]], title: str, target: float | None = None, size=(720, 440)):
    """Line plot of PSNR (dB) over CPU seconds, one line per representation, drawn with PIL."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    left, right, top, bottom = 64, 140, 36, 48
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [p for c in curves.values() for p in c]
    t_max = max(p["cpu_s"] for p in points) * 1.02
    y_lo = math.floor(min(p["psnr"] for p in points) / 2) * 2
    y_hi = math.ceil(max(p["psnr"] for p in points) / 2) * 2 + 1
    x0, x1, y0, y1 = left, w - right, h - bottom, top

    def px(t, v):
        return x0 + (x1 - x0) * t / t_max, y0 + (y1 - y0) * (v - y_lo) / (y_hi - y_lo)

    d.rectangle([x0, y1, x1, y0], outline="black")
    step = _nice_step(t_max)
    t = 0.0
    while t <= t_max:
        x, _ = px(t, y_lo)
        d.line([x, y0, x, y0 + 4], fill="black")
        d.text((x - 8, y0 + 6), f"{t:g}", fill="black", font=font)
        t += step
    for v in range(int(y_lo), int(y_hi) + 1, 2):
        _, y = px(0, v)
        d.line([x0 - 4, y, x0, y], fill="black")
        d.line([x0 + 1, y, x1 - 1, y], fill=(230, 230, 230))
        d.text((x0 - 24, y - 6), f"{v}", fill="black", font=font)
    if target is not None:
        _, y = px(0, target)
        d.line([x0 + 1, y, x1 - 1, y], fill=(150, 150, 150))
        d.text((x1 - 60, y - 12), f"X* {target:g} dB", fill=(110, 110, 110), font=font)
    d.text((x0, 12), title, fill="black", font=font)
    d.text(((x0 + x1) / 2 - 110, h - 18), "training time (s, thread CPU time, 1 core)", fill="black", font=font)
    d.text((8, top - 18), "PSNR (dB)", fill="black", font=font)
    for i, (name, curve) in enumerate(curves.items()):
        color = COLORS.get(name, (0, 0, 0))
        xy = [px(p["cpu_s"], p["psnr"]) for p in curve]
        if len(xy) > 1:
            d.line(xy, fill=color, width=2)
        for x, y in xy:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        ly = top + 10 + 18 * i
        d.line([x1 + 12, ly + 6, x1 + 36, ly + 6], fill=color, width=3)
        d.text((x1 + 42, ly), name, fill="black", font=font)
    return img


def _nice_step(span: float) -> float:
    raw = span / 6
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag
