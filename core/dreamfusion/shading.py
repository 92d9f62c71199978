"""DreamFusion's shading: a point light plus ambient light on the albedo.

For a surface point with albedo a (premultiplied by the ray's opacity o when composited), normal n and unit direction
l towards the light:

    albedo:       c = a
    lambertian:   c = a * (ambient + (1 - ambient) * max(0, n . l))
    textureless:  c = o * (ambient + (1 - ambient) * max(0, n . l))        (white material: geometry only)

Shading is deferred: normals come from the density gradient at each ray's expected surface point, so
sum_i w_i a_i * s(n) = A * s(n) with A the composited albedo.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

__all__ = ["SHADING_MODES", "shade"]

SHADING_MODES = ("albedo", "lambertian", "textureless")


def shade(
    albedo: Float[Tensor, "n m 3"],
    opacity: Float[Tensor, "n m 1"],
    normals: Float[Tensor, "n m 3"],
    light_dirs: Float[Tensor, "n m 3"],
    mode: str,
    ambient: float = 0.1,
) -> Float[Tensor, "n m 3"]:
    if mode == "albedo":
        return albedo
    if mode not in SHADING_MODES:
        raise ValueError(f"unknown shading mode {mode!r}; expected one of {SHADING_MODES}")
    lambert = (normals * light_dirs).sum(-1, keepdim=True).clamp_min(0.0)
    light = ambient + (1 - ambient) * lambert
    if mode == "lambertian":
        return albedo * light
    return (opacity * light).expand_as(albedo)  # grey: the same value in the three channels
