"""Where the viewer's generator comes from: a user-chosen file, the shipped model, or a random-init preset."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["load_model", "default_model", "random_model", "RANDOM_BANNER"]

RANDOM_BANNER = "no shipped model yet: random weights"


def random_model(preset_name: str = "small", seed: int = 0) -> torch.nn.Module:
    from tristudio.core.eg3d.generator import TriPlaneGenerator
    from tristudio.core.eg3d.presets import preset

    torch.manual_seed(seed)
    return TriPlaneGenerator(**preset(preset_name)).eval()


def load_model(path: str | Path) -> torch.nn.Module:
    """An EG3D generator from an official pickle or a tristudio model folder. Raises with a readable message."""
    path = Path(str(path).strip()).expanduser()
    if not str(path) or str(path) == ".":
        raise ValueError("no model path given")
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    try:
        from tristudio.core.eg3d.load import load_generator
    except ImportError as exc:
        raise RuntimeError(f"model loading is not available in this build (tristudio.core.eg3d.load: {exc})") from exc
    return load_generator(path)


def default_model(preset_name: str = "small") -> tuple[torch.nn.Module, str, str]:
    """(generator, name, banner): the shipped model when present, else a random-init preset with a banner."""
    try:
        from tristudio.core.eg3d.load import ModelNotFoundError, default_model_path, load_generator
    except ImportError:
        return random_model(preset_name), f"random {preset_name}", RANDOM_BANNER
    try:
        path = default_model_path()
    except ModelNotFoundError:
        path = None
    if path is not None:
        return load_generator(path), f"shipped heads model ({path.parent.name}/{path.name})", ""
    return random_model(preset_name), f"random {preset_name}", RANDOM_BANNER
