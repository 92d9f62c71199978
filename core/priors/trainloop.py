"""Pieces shared by the small-world CLIP and prior trainers: resumable state in our checkpoint format, the training
log, learning-rate schedule.

A work folder holds:
    config.json              the run's configuration (written once; --resume reads it back)
    checkpoints/step-*/      full state: weights, optimiser moments, RNG states, step (core/io/run_checkpoints.py:
                             one step folder renamed into place, `checkpoints/latest` written last; 3 kept)
    log.jsonl                one JSON line per logged step (loss, lr, ...) and per evaluation
    samples/                 periodic sample grids / retrieval reports
    export/                  the latest exported model folder (transformers / diffusers layout)
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import torch
from torch import nn

from ..io.atomic import atomic_write_text
from ..io.run_checkpoints import latest_step, load_latest, save_step

__all__ = [
    "TrainState",
    "append_log",
    "cosine_lr",
    "has_run",
    "load_train_state",
    "read_config",
    "save_train_state",
    "write_config",
]


def cosine_lr(step: int, base: float, warmup: int, total: int, floor: float = 0.1) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to floor * base at `total` (constant after)."""
    if step < warmup:
        return base * (step + 1) / warmup
    x = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * x)))


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


def has_run(folder: str | os.PathLike) -> bool:
    """Whether `folder` already holds a run (a config or a checkpoint): a new run there needs --resume."""
    return (Path(folder) / "config.json").is_file() or latest_step(folder) is not None


def load_train_state(folder: str | os.PathLike, state: TrainState, warn=print) -> dict | None:
    """Restore state in place from the newest readable checkpoint of `folder` (None, state untouched: no checkpoint
    yet) and drop log lines written after it; returns the checkpoint's JSON metadata."""
    loaded = load_latest(folder, warn=warn)
    if loaded is None:
        return None
    tensors, meta = loaded.tensors, loaded.meta
    for name, module in state.modules.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    _load_optimizer(state.optimizer, tensors, meta["optimizer"])
    state.gen.set_state(tensors["rng.torch"])
    version, internal, gauss = meta["python_rng"]
    state.rng.setstate((version, tuple(internal), gauss))
    state.step = int(meta["step"])
    truncate_log(folder, state.step)
    return meta


def truncate_log(folder: str | os.PathLike, step: int) -> None:
    """Drop log.jsonl records of steps after `step` (a killed run logged past its last checkpoint)."""
    path = Path(folder) / "log.jsonl"
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if int(record.get("step", 0)) <= step:
            keep.append(line)
    atomic_write_text(path, "".join(k + "\n" for k in keep))


def write_config(folder: str | os.PathLike, config: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / "config.json", json.dumps(config, indent=2) + "\n")


def read_config(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: --resume needs a work folder started by the same command")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a run configuration")
    return config


def append_log(folder: str | os.PathLike, record: dict) -> None:
    with open(Path(folder) / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
