"""What the renderer renders: a field maps world points and view directions to raw density and features.

    field(coords: (N, P, 3) world points, dirs: (N, P, 3) unit directions) -> {"sigma": (N, P, 1), "rgb": (N, P, C)}

"sigma" is the raw density (the renderer applies RenderOptions.density_activation: EG3D's softplus(s - 1), or
identity for fields that output sigma >= 0); "rgb" holds C features whose first 3 channels are the colour. Fields in
tristudio: EG3D tri-planes + OSG decoder (core/render/triplane.py `triplane_field`), DreamFusion's density + albedo
field (core/dreamfusion/field.py), the fitting representations (core/fields/).
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from jaxtyping import Float
from torch import Tensor

__all__ = ["Field", "FieldOutput"]


class FieldOutput(TypedDict):
    sigma: Float[Tensor, "n p 1"]  # raw density, before the renderer's activation
    rgb: Float[Tensor, "n p c"]  # features; the first 3 channels are RGB


class Field(Protocol):
    def __call__(self, coords: Float[Tensor, "n p 3"], dirs: Float[Tensor, "n p 3"]) -> FieldOutput: ...
