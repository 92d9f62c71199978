"""A `tristudio dreamfusion --out RUN` folder, read back: is it one, which prior made it, and its orbit views (what
`tristudio eval rprecision --runs` judges and the viewer opens).

A run folder holds config.json (DreamFusionConfig: prompt, guidance, ...), command.json (the command line, with the
--prior folder as `prior_path`; cli/resume.py) and checkpoints/step-N (core/io/run_checkpoints.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["is_dreamfusion_run", "check_run", "recorded_prior", "run_prior", "run_views"]


def is_dreamfusion_run(folder: str | os.PathLike) -> bool:
    """A `tristudio dreamfusion ... --out RUN` folder: a config.json with a prompt and a guidance method."""
    try:
        config = json.loads((Path(str(folder)).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"prompt", "guidance"} <= set(config)


def check_run(folder: str | os.PathLike) -> Path:
    """The folder, when it is a DreamFusion run with a checkpoint; else ValueError naming what it lacks."""
    from .optimize import DreamFusion

    folder = Path(str(folder)).expanduser()
    if not is_dreamfusion_run(folder):
        raise ValueError(f"{folder} is not a DreamFusion run folder (no config.json with a prompt)")
    if not DreamFusion.has_checkpoint(folder):
        raise ValueError(f"{folder} holds no DreamFusion checkpoint yet")
    return folder


def _command(folder: str | os.PathLike) -> dict:
    """The run's command.json ({} for a run from before it, or a broken one)."""
    from ..io.training_run import TrainingRun

    try:
        return TrainingRun(Path(str(folder)).expanduser(), warn=None).read_command() or {}
    except ValueError:
        return {}


def recorded_prior(folder: str | os.PathLike) -> str | None:
    """The prior folder the run was made with (its command.json's --prior), or None: the shipped prior (no --prior),
    a run from before command.json, or a broken command.json."""
    return _command(folder).get("options", {}).get("prior_path") or None


def run_prior(folder: Path) -> Path:
    """The prior folder to render the run with: the one it was made with, checked to be there and to hold the weights
    it held then (command.json's fingerprint); ValueError naming the run and the prior otherwise."""
    from ..io.assets import shipped_prior_path
    from ..io.checkpoint import folder_fingerprint
    from ..io.training_run import run_export

    command = _command(folder)
    path = Path(recorded_prior(folder) or shipped_prior_path())
    try:
        model = run_export(path, "prior")
    except FileNotFoundError as exc:
        raise ValueError(f"{folder}: {exc}") from None
    if not model.is_dir():
        raise ValueError(
            f"{folder} was made with the prior {path}, which is not there (moved? the path is prior_path in "
            f"{folder / 'command.json'})"
        )
    then = command.get("models", {}).get("prior_path")
    if then is not None and folder_fingerprint(model) != then:
        raise ValueError(f"{folder} was made with other weights than {path} holds now (retrained or replaced since)")
    return model


@torch.no_grad()
def run_views(
    folders: list[str | os.PathLike],
    views: int = 8,
    resolution: int = 64,
    shading: str = "lambertian",
    device: str = "auto",
    warn=print,
) -> tuple[Float[Tensor, "n 3 r r"], list[str]]:
    """Each run's latest checkpoint rendered from `views` cameras evenly spaced in azimuth from the front
    (export.render_orbit, 15 deg elevation): images (len(folders) * views, 3, R, R) in [0, 1], run by run, and the
    prompt of each image. Each run is rendered with the prior it was made with (loaded once per folder).

    Raises ValueError naming the folder that is not a DreamFusion run or holds no checkpoint."""
    from ..priors.load import load_prior
    from .export import render_orbit
    from .optimize import DreamFusion

    priors: dict[str, object] = {}
    images, prompts = [], []
    for folder in map(check_run, folders):
        prior_path = str(run_prior(folder).resolve())
        if prior_path not in priors:
            priors[prior_path] = load_prior(prior_path, device=device)
        df = DreamFusion.load(folder, priors[prior_path], warn=warn, read_only=True)
        images.append(render_orbit(df, views, resolution, shading=shading)["image"].cpu())
        prompts += [df.cfg.prompt] * views
    return torch.cat(images), prompts
