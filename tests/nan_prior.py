"""A copy of a prior folder with one NaN in one component's weights (tests of the refusal of non-finite priors)."""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file


def nan_prior(prior_dir: Path, dest: Path, component: str = "unet") -> Path:
    """Copy `prior_dir` to `dest` and set one entry of the first (by name) floating-point tensor of more than 4
    entries in `component`'s safetensors file to NaN; returns `dest`."""
    shutil.copytree(prior_dir, dest)
    path = next((dest / component).glob("*.safetensors"))
    tensors = load_file(str(path))
    key = sorted(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 4)[0]
    tensors[key].view(-1)[3] = float("nan")
    save_file(tensors, str(path))
    return dest
