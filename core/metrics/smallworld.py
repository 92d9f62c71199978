"""A small-world feature extractor for FID-sw / KID-sw: a conv encoder trained as an autoencoder on renders of the
procedural worlds. Its numbers are *not* comparable with published FID (different features); they are reported under
their own names ("FID-sw", "KID-sw").

    encoder: 64 px RGB in [0, 1] -> 4 stride-2 convs (32, 64, 128, 128 ch, lrelu) -> global mean + std pool -> 256-d
    decoder (training only): 256 -> 128 x 4 x 4 -> 4 upsampling convs -> 64 px

Saved as a tristudio checkpoint folder (model.safetensors + model.json {"format": "tristudio-sw-features"}). The
shipped one (core/assets/sw_features, `shipped_extractor_path()`) was trained by
`tristudio train features --out OUT --data HEADS_DATASET --data OBJECT_RENDERS` on both worlds.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..io.assets import ASSETS
from ..io.checkpoint import (
    generator_state_from_tensor,
    generator_state_to_tensor,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    save_checkpoint,
)
from ..io.run_checkpoints import save_step
from ..io.training_run import TrainingRun
from .convnets import RES, conv_features, load_frozen, resize, strided_convs

__all__ = [
    "FORMAT",
    "SmallWorldEncoder",
    "load_small_world_extractor",
    "load_training_images",
    "shipped_extractor_path",
    "train_small_world_extractor",
]

FORMAT = "tristudio-sw-features"


class SmallWorldEncoder(nn.Module):
    feature_dim = 256

    def __init__(self):
        super().__init__()
        self.convs = strided_convs([3, 32, 64, 128, 128])
        self.fc = nn.Linear(256, 128 * 16)
        self.ups = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in ((128, 128), (128, 64), (64, 32), (32, 3)))

    def feature_map(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 128 4 4"]:
        return conv_features(self.convs, images)

    def forward(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 256"]:
        x = self.feature_map(images)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

    def reconstruct(self, images: Tensor) -> Tensor:
        y = self.fc(self.forward(images)).reshape(-1, 128, 4, 4)
        for i, conv in enumerate(self.ups):
            y = conv(F.interpolate(y, scale_factor=2, mode="nearest"))
            y = F.leaky_relu(y, 0.2) if i < len(self.ups) - 1 else y
        return y  # (n, 3, 64, 64) in ~[-1, 1]


def train_small_world_extractor(
    images: Float[Tensor, "n 3 h w"],
    out: str | os.PathLike,
    steps: int = 500,
    batch: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    log=None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> Path:
    """Fit the autoencoder to `images` (in [0, 1]) and save the encoder folder `out` (model.safetensors + model.json).
    `out` is also the run folder (core/io/training_run.py): config.json, log.jsonl (reconstruction MSE every 100 steps
    and at the last), losses.png, and with checkpoint_every > 0 checkpoints/ that `resume` continues from."""
    run = TrainingRun(out, checkpoint_every, total_steps=steps if checkpoint_every else None, warn=log or print)
    run.check_start(resume)
    config = {"kind": "sw-features", "steps": steps, "batch": batch, "lr": lr, "seed": seed, "n_images": len(images)}
    run.write_config(config)
    torch.manual_seed(seed)
    net = SmallWorldEncoder()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    target = resize(images, RES) * 2 - 1
    g = torch.Generator().manual_seed(seed)

    def save() -> Path:
        opt_tensors, opt_meta = optimizer_state_to_tensors(opt, "optim")
        tensors = {
            **{f"net.{k}": v for k, v in net.state_dict().items()},
            **opt_tensors,
            "rng": generator_state_to_tensor(g),
        }
        return save_step(out, step, tensors, {"format": FORMAT + "-train", "optimizer": opt_meta})

    def restore(loaded) -> None:
        net.load_state_dict({k[4:]: v for k, v in loaded.tensors.items() if k.startswith("net.")})
        optimizer_state_from_tensors(opt, loaded.tensors, loaded.meta["optimizer"], "optim")
        generator_state_from_tensor(g, loaded.tensors["rng"])

    step = run.resume(restore)
    loss = torch.zeros(())
    records = run.records()  # those the checkpoint at `step` covers (resume cut the log back to it)
    while step < steps:
        idx = torch.randint(len(images), (min(batch, len(images)),), generator=g)
        loss = F.mse_loss(net.reconstruct(images[idx]), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if (step - 1) % 100 == 0 or step == steps:
            records.append({"step": step, "mse": loss.item()})
            run.log(records[-1])
            if log is not None:
                log(f"sw extractor step {step - 1}: reconstruction mse {loss.item():.4f}")
        run.maybe_checkpoint(step, save)
    run.plot(records, keys=("mse",))
    final_mse = records[-1]["mse"] if records else float(loss.detach())  # the last step is always logged
    meta = {"format": FORMAT, "version": 1, "resolution": RES, "steps": steps, "final_mse": final_mse}
    return save_checkpoint(out, dict(net.state_dict()), meta)


def shipped_extractor_path() -> Path:
    return ASSETS / "sw_features"


def load_training_images(sources: list[str], per_source: int | None = None) -> Float[Tensor, "n 3 64 64"]:
    """Images in [0, 1] at 64 px from EG3D datasets (folder / zip) and render-set folders (renders.json), the first
    `per_source` of each."""
    out = []
    for src in sources:
        if (Path(src) / "renders.json").is_file():
            from ..priors.renders import load_render_set

            x = load_render_set(src).float_images(slice(0, per_source))
        else:
            from ..data import EG3DDataset

            ds = EG3DDataset(src)
            n = len(ds) if per_source is None else min(per_source, len(ds))
            x = torch.stack([ds[i][0] for i in range(n)]).float() / 255
        out.append(resize(x, RES))
    if not out:
        raise ValueError("no training images: pass at least one dataset or render-set folder")
    return torch.cat(out)


def load_small_world_extractor(path: str | os.PathLike | None = None, device="cpu") -> SmallWorldEncoder:
    """Load an extractor folder (None: the shipped one)."""
    hint = "pass --extractor PATH (tristudio train features ...)"
    net, _ = load_frozen(SmallWorldEncoder, path, FORMAT, shipped_extractor_path(), "small-world extractor", hint)
    return net.to(device)
