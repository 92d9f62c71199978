"""Fields for single-scene fitting: three ways to store a radiance field, one renderer (core/render/volume.py).

Every field is an `nn.Module` called as `field(coords (n, p, 3) world, dirs (n, p, 3) unit)` ->
{"sigma": (n, p, 1) raw density, "rgb": (n, p, 3) in [0, 1]}, so it plugs straight into `render_rays`.

    mlp       NeRFMLP         implicit: positional encoding + 8 x 256 MLP             (nerf_mlp.py)
    grid      DenseGridField  explicit: R^3 x C feature grid + small decoder            (grid.py)
    triplane  TriPlaneField   hybrid:   3 x C x R^2 feature planes + small decoder      (triplane_field.py)
"""

from __future__ import annotations

from torch import nn

from .grid import DenseGridField, sample_grid
from .nerf_mlp import NeRFMLP
from .triplane_field import TriPlaneField

__all__ = [
    "REPRESENTATIONS",
    "make_field",
    "parameter_groups",
    "count_parameters",
    "NeRFMLP",
    "DenseGridField",
    "TriPlaneField",
    "sample_grid",
]

REPRESENTATIONS = ("mlp", "grid", "triplane")


def make_field(kind: str, box_warp: float = 1.0, **kwargs) -> nn.Module:
    """Build a field by name; kwargs go to its constructor (resolution, channels, width, ...)."""
    if kind == "mlp":
        return NeRFMLP(box_warp=box_warp, **kwargs)
    if kind == "grid":
        return DenseGridField(box_warp=box_warp, **kwargs)
    if kind == "triplane":
        return TriPlaneField(box_warp=box_warp, **kwargs)
    raise ValueError(f"unknown representation {kind!r}; expected one of {', '.join(REPRESENTATIONS)}")


def parameter_groups(field: nn.Module, lr: float, feature_lr: float | None = None) -> list[dict]:
    """Adam groups: the explicit feature tensor (grid / planes) at `feature_lr`, everything else at `lr`."""
    features = [p for name, p in field.named_parameters() if name in ("grid", "planes")]
    rest = [p for name, p in field.named_parameters() if name not in ("grid", "planes")]
    groups = [{"params": rest, "lr": lr, "name": "network"}]
    if features:
        groups.append({"params": features, "lr": lr if feature_lr is None else feature_lr, "name": "features"})
    return groups


def count_parameters(field: nn.Module) -> int:
    return sum(p.numel() for p in field.parameters())
