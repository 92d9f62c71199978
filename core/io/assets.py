"""The folders shipped as package data under core/assets/ (the small-world nets and prior, the EG3D heads model).

ASSETS / "sw_features"                                              # a shipped folder (package data, may be absent)
require_shipped(folder, "model.json", "no shipped ...; pass --x")   # the folder, or FileNotFoundError(that line)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "require_shipped"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def require_shipped(folder: Path, marker: str, missing: str) -> Path:
    """`folder` when it holds the file `marker`; else FileNotFoundError(`missing`): one line saying what to pass
    instead (a shipped folder is package data that an install or a checkout may lack)."""
    if not (folder / marker).is_file():
        raise FileNotFoundError(missing)
    return folder
