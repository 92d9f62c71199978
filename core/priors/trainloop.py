"""Pieces shared by the small-world CLIP and prior trainers: the config fields they share, resumable state in our
checkpoint format, the learning-rate schedule, the optimiser step and the step loop. The work folder is a
core/io/training_run.py run folder (config.json, log.jsonl with one line every 10 steps and per evaluation,
checkpoints/ with weights, optimiser moments, RNG states) plus samples/ (sample grids, retrieval reports) and export/
(the latest exported model, transformers / diffusers layout).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..io.run_checkpoints import Loaded, save_step
from ..io.training_run import TrainingRun

__all__ = [
    "TrainConfig",
    "TrainState",
    "check_box_downsample",
    "cosine_lr",
    "load_train_state",
    "open_run",
    "optimizer_step",
    "run_config",
    "run_steps",
    "save_train_state",
    "scheduled_lr",
]


def check_box_downsample(renders_side: int, size: int, option: str) -> None:
    """Both trainers box-downsample the renders to their input size: it must divide the renders' side (a larger or
    uneven size would train on interpolated pixels). ValueError naming the option otherwise."""
    if renders_side % size:
        raise ValueError(
            f"renders are {renders_side} px: {option} {size} does not divide it (use a divisor, e.g. {renders_side})"
        )


@dataclass
class TrainConfig:
    """What both trainers' configs hold: batch, schedule (AdamW, cosine_lr), caption-variant odds, seed. ClipConfig and
    PriorConfig add their models' sizes and set their own batch_size / steps / p_view defaults."""

    batch_size: int
    steps: int
    p_view: float
    lr: float = 1e-3
    warmup: int = 100
    p_material: float = 0.5
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict):
        """The config from its asdict() form (a run's config.json); unknown keys are ignored."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def cosine_lr(step: int, base: float, warmup: int, total: int, floor: float = 0.1) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to floor * base at `total` (constant after)."""
    if step < warmup:
        return base * (step + 1) / warmup
    x = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * x)))


def scheduled_lr(optimizer: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> float:
    """Set every parameter group's lr to cosine_lr at `step` for cfg's schedule; returns it."""
    lr = cosine_lr(step, cfg.lr, cfg.warmup, cfg.steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: Iterable[nn.Parameter]) -> None:
    """Backward, clip the gradients of `params` to norm 1, one optimiser step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()


class TrainState:
    """What a resumed run needs besides the config: step, modules, optimiser, a torch generator, a Python RNG."""

    def __init__(self, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, seed: int):
        self.modules, self.optimizer = modules, optimizer
        self.step = 0
        self.gen = torch.Generator().manual_seed(seed)  # batches, augmentations, noise, timesteps, dropout
        self.rng = random.Random(seed)  # caption variants


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_train_state(folder: str | os.PathLike, state: TrainState, extra: dict | None = None, keep: int = 3) -> Path:
    """Write the full state as checkpoint folder/checkpoints/step-N (one atomic unit, see core/io/run_checkpoints)."""
    tensors = {}
    for name, module in state.modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    opt_tensors, opt_meta = _optimizer_tensors(state.optimizer)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = state.gen.get_state()
    version, internal, gauss = state.rng.getstate()
    meta = {
        "format": "tristudio-train-state",
        "step": state.step,
        "optimizer": opt_meta,
        "python_rng": [version, list(internal), gauss],
        **(extra or {}),
    }
    return save_step(folder, state.step, tensors, meta, keep=keep)


def load_train_state(folder: str | os.PathLike, state: TrainState, warn=print) -> dict | None:
    """Restore state in place from the newest readable checkpoint of `folder` (None, state untouched: no checkpoint
    yet) and cut log.jsonl back to it (TrainingRun.resume); returns the checkpoint's JSON metadata."""
    found: list[dict] = []

    def restore(loaded: Loaded) -> None:
        tensors, meta = loaded.tensors, loaded.meta
        for name, module in state.modules.items():
            prefix = name + "."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        _load_optimizer(state.optimizer, tensors, meta["optimizer"])
        state.gen.set_state(tensors["rng.torch"])
        version, internal, gauss = meta["python_rng"]
        state.rng.setstate((version, tuple(internal), gauss))
        state.step = int(meta["step"])
        found.append(meta)

    TrainingRun(folder, warn=warn).resume(restore)
    return found[0] if found else None


def open_run(work: str | os.PathLike, resume: bool, checkpoint_every: int) -> tuple[TrainingRun, dict | None]:
    """The work folder as a TrainingRun and, with --resume, its saved config (TrainingRun.check_start)."""
    run = TrainingRun(work, checkpoint_every=checkpoint_every)
    run.check_start(resume)
    return run, run.read_config() if resume else None


def run_config(run: TrainingRun, saved: dict | None, key: str, cls: type[TrainConfig], cfg, steps: int | None):
    """The run's config: the saved one (saved[key]) when resuming, else `cfg` (default cls()); `steps` overrides its
    length, which becomes run.total_steps."""
    cfg = cls.from_dict(saved[key]) if saved is not None else cfg or cls()
    if steps is not None:
        cfg.steps = steps
    run.total_steps = cfg.steps
    return cfg


def run_steps(
    run: TrainingRun, trainer, kind: str, every: int, periodic: Callable[[], None], callback=None, resume: bool = False
) -> None:
    """The prior's and CLIP's step loop up to run.total_steps: with `resume`, restore the trainer's state from the
    newest checkpoint first; log step 1 and every 10th, checkpoint on the run's cadence, call `periodic()` (sample
    grid / retrieval evaluation) every `every` steps and at the last. A run resumed at its last step calls it once
    more: a kill after the last checkpoint may have come before the last export."""
    state = trainer.state
    if resume and load_train_state(run.dir, state) is None:
        print(f"--resume: no checkpoint in {run.dir} yet; starting from step 0")
    if state.step >= run.total_steps:
        periodic()
    while state.step < run.total_steps:
        record = trainer.train_step()
        if record["step"] % 10 == 0 or record["step"] == 1:
            run.log(record)
        if callback:
            callback(record)
        run.maybe_checkpoint(state.step, lambda: save_train_state(run.dir, state, {"kind": kind}))
        if (every and state.step % every == 0) or state.step == run.total_steps:
            periodic()
