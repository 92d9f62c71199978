"""The folders shipped as package data under core/assets/ (the small-world nets and prior, the EG3D heads model).

ASSETS / "sw_features"                                              # a shipped folder (package data, may be absent)
require_shipped(folder, "model.json", "no shipped ...; pass --x")   # the folder, or FileNotFoundError(that line)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "require_shipped", "shipped_clip_path", "shipped_eg3d_path", "shipped_prior_path"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def shipped_prior_path() -> Path:
    """The small-world text-to-image prior (a diffusers folder)."""
    return ASSETS / "prior_small"


def shipped_clip_path() -> Path:
    """The small-world CLIP (a transformers CLIPModel folder)."""
    return ASSETS / "clip_small"


def shipped_eg3d_path() -> Path:
    """The folder of the shipped EG3D heads model(s)."""
    return ASSETS / "eg3d_heads"


def require_shipped(folder: Path, marker: str, missing: str) -> Path:
    """`folder` when it holds the file `marker`; else FileNotFoundError(`missing`): one line saying what to pass
    instead (a shipped folder is package data that an install or a checkout may lack)."""
    if not (folder / marker).is_file():
        raise FileNotFoundError(missing)
    return folder
