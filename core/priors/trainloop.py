"""Pieces shared by the small-world CLIP and prior trainers: resumable state in our checkpoint format, the training
log, learning-rate schedule.

A work folder holds:
    config.json              the run's configuration (written once; --resume reads it back)
    checkpoint/model.*       latest full state: weights, optimiser moments, RNG states, step (atomic, JSON last)
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
from ..io.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint

__all__ = [
    "TrainState",
    "append_log",
    "cosine_lr",
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


def save_train_state(folder: str | os.PathLike, state: TrainState, extra: dict | None = None) -> Path:
    """Write the full state to folder/checkpoint (atomic; the JSON's presence marks a complete checkpoint)."""
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
    return save_checkpoint(Path(folder) / "checkpoint", tensors, meta)


def load_train_state(folder: str | os.PathLike, state: TrainState) -> dict:
    """Restore state in place from folder/checkpoint; returns the checkpoint's JSON metadata."""
    ckpt = Path(folder) / "checkpoint"
    if not checkpoint_exists(ckpt):
        raise FileNotFoundError(f"no checkpoint to resume from in {ckpt} (model.json + model.safetensors)")
    tensors, meta = load_checkpoint(ckpt)
    for name, module in state.modules.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    _load_optimizer(state.optimizer, tensors, meta["optimizer"])
    state.gen.set_state(tensors["rng.torch"])
    version, internal, gauss = meta["python_rng"]
    state.rng.setstate((version, tuple(internal), gauss))
    state.step = int(meta["step"])
    return meta


def write_config(folder: str | os.PathLike, config: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / "config.json", json.dumps(config, indent=2) + "\n")


def read_config(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: --resume needs a work folder started by the same command")
    return json.loads(path.read_text())


def append_log(folder: str | os.PathLike, record: dict) -> None:
    with open(Path(folder) / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
