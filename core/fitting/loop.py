"""Fitting one scene from posed images: random rays from all training pixels, the shared volume renderer, MSE on
RGB, Adam. The same loop for every representation; only the field and its learning rates change.

Per step: B rays drawn uniformly (with replacement) from the N x H x W training pixels, rendered with
`render_rays` (stratified + importance samples inside the scene box, EG3D's softplus(s - 1) density, composited over
the white background, colour unsigned in [0, 1]), loss = mean (C_pred - C_true)^2 over rays and channels.

Learning rates (Adam, betas (0.9, 0.999), constant; chosen by short sweeps on object:torus/orange/matte, see
core/bench/representations.py):
    mlp       5e-4 for all weights (the NeRF paper's initial rate)
    grid      features 2e-2, decoder 1e-2 (equalised-LR layers: effective step ~ lr / sqrt(fan_in))
    triplane  features 2e-2, decoder 1e-2
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..fields import count_parameters, make_field, parameter_groups
from ..io.run_checkpoints import latest_step, save_step, step_folder
from ..io.training_run import TrainingRun
from ..render.volume import RenderOptions, render_rays
from .evaluate import evaluate, psnr
from .views import Views

__all__ = ["FitConfig", "Fitter", "DEFAULTS", "fit"]

# Per-representation defaults: learning rates and field constructor arguments.
DEFAULTS: dict[str, dict] = {
    "mlp": {"lr": 5e-4, "feature_lr": None, "field": {}},
    "grid": {"lr": 1e-2, "feature_lr": 2e-2, "field": {"resolution": 128, "channels": 8}},
    "triplane": {"lr": 1e-2, "feature_lr": 2e-2, "field": {"resolution": 128, "channels": 32}},
}


@dataclass
class FitConfig:
    representation: str = "triplane"
    steps: int = 1000
    rays_per_step: int = 256
    depth_resolution: int = 24  # stratified samples per ray (same for every representation)
    depth_resolution_importance: int = 24  # importance samples per ray
    lr: float | None = None  # network learning rate; None -> DEFAULTS
    feature_lr: float | None = None  # grid / plane feature learning rate; None -> DEFAULTS
    field: dict = field(default_factory=dict)  # constructor overrides, e.g. {"resolution": 64}
    seed: int = 0

    def __post_init__(self):
        if self.representation not in DEFAULTS:
            raise ValueError(f"unknown representation {self.representation!r}; expected one of {', '.join(DEFAULTS)}")
        d = DEFAULTS[self.representation]
        self.lr = d["lr"] if self.lr is None else self.lr
        self.feature_lr = d["feature_lr"] if self.feature_lr is None else self.feature_lr
        self.field = {**d["field"], **self.field}
        if self.steps < 0 or self.rays_per_step < 1:
            raise ValueError(
                f"FitConfig: need steps >= 0 and rays_per_step >= 1, got {self.steps}, {self.rays_per_step}"
            )

    def render_options(self, background: tuple[float, float, float], box_warp: float) -> RenderOptions:
        if tuple(background) != (1.0, 1.0, 1.0):
            raise ValueError(f"fitting supports the white background only (renderer white_back), got {background}")
        return RenderOptions(
            ray_start="auto",
            ray_end="auto",
            box_warp=box_warp,
            depth_resolution=self.depth_resolution,
            depth_resolution_importance=self.depth_resolution_importance,
            white_back=True,
            density_activation="softplus_shift",
            signed_output=False,
            chunk=4096,
        )


class Fitter:
    """Holds the field, its optimiser and the training rays; `step()` does one optimisation step."""

    def __init__(self, config: FitConfig, train: Views):
        self.config = config
        torch.manual_seed(config.seed)  # field init and the renderer's stratified jitter
        self.field = make_field(config.representation, box_warp=train.box_warp, **config.field)
        self.optimizer = torch.optim.Adam(parameter_groups(self.field, config.lr, config.feature_lr))
        self.opts = config.render_options(train.background, train.box_warp)
        rays = train.cameras.rays(train.resolution)
        self.origins: Float[Tensor, "p 3"] = rays.origins.reshape(-1, 3).contiguous()  # world, all training pixels
        self.dirs: Float[Tensor, "p 3"] = rays.directions.reshape(-1, 3).contiguous()  # world, unit
        self.target: Float[Tensor, "p 3"] = train.rgb.reshape(-1, 3).contiguous()  # same row-major pixel order
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step_count = 0
        self.train_time = 0.0  # wall-clock seconds spent inside step() only
        self.train_cpu = 0.0  # CPU seconds of the calling thread inside step() (robust to other processes' load)

    @property
    def n_parameters(self) -> int:
        return count_parameters(self.field)

    def step(self) -> dict:
        t0, c0 = time.perf_counter(), time.thread_time()
        idx = torch.randint(self.origins.shape[0], (self.config.rays_per_step,), generator=self.generator)
        out = render_rays(self.field, self.origins[idx][None], self.dirs[idx][None], self.opts)
        pred = out.features[0, :, :3]  # (B, 3) in [0, 1]
        loss = torch.mean((pred - self.target[idx]) ** 2)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fit: loss is {loss.item()} at step {self.step_count}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_count += 1
        self.train_time += time.perf_counter() - t0
        self.train_cpu += time.thread_time() - c0
        return {"loss": loss.item(), "psnr_batch": psnr(pred.detach().clamp(0, 1), self.target[idx])}

    def evaluate(self, views: Views) -> dict:
        return evaluate(self.field, views, self.opts)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> tuple[dict[str, Tensor], dict]:
        tensors = {f"field.{k}": v for k, v in self.field.state_dict().items()}
        opt = self.optimizer.state_dict()
        for i, st in opt["state"].items():
            for k, v in st.items():
                tensors[f"optim.{i}.{k}"] = torch.as_tensor(v)
        tensors["rng.global"] = torch.get_rng_state()
        tensors["rng.rays"] = self.generator.get_state()
        groups = [
            {k: v for k, v in g.items() if k != "params"} | {"n_params": len(g["params"])} for g in opt["param_groups"]
        ]
        meta = {
            "format": "tristudio-fit",
            "config": asdict(self.config),
            "step": self.step_count,
            "train_time_s": self.train_time,
            "train_cpu_s": self.train_cpu,
            "n_parameters": self.n_parameters,
            "param_groups": groups,
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, Tensor], meta: dict) -> None:
        if meta.get("format") != "tristudio-fit":
            raise ValueError(f"not a tristudio fit checkpoint (format {meta.get('format')!r})")
        if meta["config"]["representation"] != self.config.representation:
            raise ValueError(
                f"checkpoint holds a {meta['config']['representation']!r} field, not {self.config.representation!r}"
            )
        saved = {k[6:]: v for k, v in tensors.items() if k.startswith("field.")}
        mine = self.field.state_dict()
        wrong = [k for k in mine if k not in saved or saved[k].shape != mine[k].shape]
        if wrong or len(saved) != len(mine):
            k = wrong[0] if wrong else next(iter(set(saved) - set(mine)))
            theirs, ours = tuple(saved[k].shape) if k in saved else None, tuple(mine[k].shape) if k in mine else None
            raise ValueError(
                f"the checkpoint's field is not the one these options make ({k}: {theirs} saved, {ours} now): resume "
                "with the options the run was started with (its config.json)"
            )
        self.field.load_state_dict(saved)
        opt = self.optimizer.state_dict()
        state: dict[int, dict] = {}
        for key, v in tensors.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        opt["state"] = state
        self.optimizer.load_state_dict(opt)
        torch.set_rng_state(tensors["rng.global"])
        self.generator.set_state(tensors["rng.rays"])
        self.step_count, self.train_time = int(meta["step"]), float(meta["train_time_s"])
        self.train_cpu = float(meta.get("train_cpu_s", 0.0))


def _jsonable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "images"}


def fit(
    config: FitConfig,
    train: Views,
    test: Views,
    run_dir: str | Path,
    log_every: int = 25,
    eval_every: int = 0,
    ckpt_every: int = 500,
    resume: bool = False,
    echo=print,
) -> tuple[Fitter, dict]:
    """Fit in the run folder RUN_DIR (core/io/training_run.py: log.jsonl, checkpoints/). Returns the fitter and
    the final held-out metrics (with images). `eval_every` = 0: evaluate the held-out views only at the end."""
    run_dir = Path(run_dir)
    run = TrainingRun(run_dir, checkpoint_every=ckpt_every, total_steps=config.steps, warn=echo)
    run.check_start(resume)
    fitter = Fitter(config, train)
    run.write_config(asdict(config))
    if run.resume(lambda loaded: fitter.load_state(loaded.tensors, loaded.meta)):
        echo(f"resumed from {step_folder(run_dir, fitter.step_count)} at step {fitter.step_count}")
    if fitter.step_count == 0:
        run.log(
            {
                "event": "start",
                "config": asdict(config),
                "n_parameters": fitter.n_parameters,
                "n_train_views": len(train),
                "n_test_views": len(test),
                "resolution": train.resolution,
            }
        )
    while fitter.step_count < config.steps:
        m = fitter.step()
        s = fitter.step_count
        if s % log_every == 0 or s == config.steps:
            run.log({"step": s, "time_s": round(fitter.train_time, 4), "cpu_s": round(fitter.train_cpu, 4), **m})
            echo(f"step {s:6d}  {fitter.train_time:8.1f}s  loss {m['loss']:.5f}  batch PSNR {m['psnr_batch']:.2f}")
        if eval_every and s % eval_every == 0 and s < config.steps:
            ev = _jsonable(fitter.evaluate(test))
            run.log({"step": s, "time_s": round(fitter.train_time, 4), "eval": ev})
            echo(f"  held-out PSNR {ev['psnr']:.2f} dB, depth MAE {ev['depth_mae']:.4f}")
        run.maybe_checkpoint(s, lambda: save_step(run_dir, fitter.step_count, *fitter.state()))
    if latest_step(run_dir) != fitter.step_count:
        save_step(run_dir, fitter.step_count, *fitter.state())
    final = fitter.evaluate(test)
    run.log(
        {"step": fitter.step_count, "time_s": round(fitter.train_time, 4), "eval": _jsonable(final), "event": "final"}
    )
    return fitter, final
