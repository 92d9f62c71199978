"""Signed distance functions of primitive shapes, in torch, on batched points.

Every primitive is centred at the origin of its *local* frame (world units, +y up, same frame as core/cameras.py)
and maps points `(..., 3)` to signed distances `(...)` (negative inside). Size parameters broadcast against the
points' leading dimensions, so one call can evaluate many differently sized shapes at once.

Solids of revolution (torus, cylinder, cone, capsule) have their axis along +y.

All functions are exact Euclidean distances except `ellipsoid`, which returns a *lower bound* of the distance
(1-Lipschitz, exact zero set): safe for sphere tracing, with exact surface position and surface normal.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "sphere",
    "box",
    "rounded_box",
    "torus",
    "cylinder",
    "cone",
    "capsule",
    "ellipsoid",
    "smooth_union",
]

Like = Float[Tensor, "..."] | float


def _t(x: Like, ref: Tensor) -> Tensor:
    return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)


def sphere(p: Float[Tensor, "... 3"], radius: Like) -> Float[Tensor, "..."]:
    """Sphere of `radius` centred at the origin."""
    return p.norm(dim=-1) - _t(radius, p)


def box(p: Float[Tensor, "... 3"], half_size: Float[Tensor, "... 3"] | tuple) -> Float[Tensor, "..."]:
    """Axis-aligned box spanning [-half_size, half_size] on each axis."""
    q = p.abs() - _t(half_size, p)
    outside = q.clamp(min=0).norm(dim=-1)
    inside = q.amax(dim=-1).clamp(max=0)
    return outside + inside


def rounded_box(
    p: Float[Tensor, "... 3"], half_size: Float[Tensor, "... 3"] | tuple, rounding: Like
) -> Float[Tensor, "..."]:
    """Box of outer `half_size` whose edges and corners are rounded with radius `rounding` (< min half size)."""
    r = _t(rounding, p)
    return box(p, _t(half_size, p) - r[..., None]) - r


def torus(p: Float[Tensor, "... 3"], major: Like, minor: Like) -> Float[Tensor, "..."]:
    """Torus in the xz plane (axis +y): tube of radius `minor` around a circle of radius `major`."""
    rho = p[..., [0, 2]].norm(dim=-1)
    return torch.stack([rho - _t(major, p), p[..., 1]], dim=-1).norm(dim=-1) - _t(minor, p)


def cylinder(p: Float[Tensor, "... 3"], radius: Like, half_height: Like) -> Float[Tensor, "..."]:
    """Capped cylinder along y: |y| <= half_height, sqrt(x^2 + z^2) <= radius."""
    rho = p[..., [0, 2]].norm(dim=-1)
    d = torch.stack([rho - _t(radius, p), p[..., 1].abs() - _t(half_height, p)], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.amax(dim=-1).clamp(max=0)


def cone(p: Float[Tensor, "... 3"], radius: Like, half_height: Like) -> Float[Tensor, "..."]:
    """Solid cone along y: base disc of `radius` at y = -half_height, apex at y = +half_height.

    Exact. In the (rho, y) half plane the cross-section is the triangle (0,-h), B = (r,-h), C = (0,h). Inside it, and
    outside within the normal bands of the base and slant edges, the distance is the larger signed distance to the
    two edge lines (smooth, non-zero gradient on the surface); beyond the rim B or the apex C it is the distance to
    that vertex.
    """
    r, h = _t(radius, p), _t(half_height, p)
    rho = p[..., [0, 2]].norm(dim=-1)
    y = p[..., 1]
    k = torch.sqrt(r * r + 4 * h * h)
    line = torch.maximum(-(y + h), (2 * h * (rho - r) + r * (y + h)) / k)
    s = (-(rho - r) * r + (y + h) * 2 * h) / (k * k)  # projection of q - B onto C - B, in units of |C - B|
    to_rim = torch.stack([rho - r, y + h], dim=-1).norm(dim=-1)
    to_apex = torch.stack([rho, y - h], dim=-1).norm(dim=-1)
    return torch.where((s < 0) & (rho > r), to_rim, torch.where(s > 1, to_apex, line))


def capsule(p: Float[Tensor, "... 3"], radius: Like, half_height: Like) -> Float[Tensor, "..."]:
    """Capsule: all points within `radius` of the segment from (0, -half_height, 0) to (0, half_height, 0)."""
    h = _t(half_height, p)
    y = torch.maximum(torch.minimum(p[..., 1], h), -h)
    axis_point = torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], dim=-1)
    return (p - axis_point).norm(dim=-1) - _t(radius, p)


def ellipsoid(p: Float[Tensor, "... 3"], radii: Float[Tensor, "... 3"] | tuple) -> Float[Tensor, "..."]:
    """Axis-aligned ellipsoid with semi-axes `radii`. A 1-Lipschitz lower bound of the distance, exact at the
    surface: (|p / radii| - 1) * min(radii). (Its gradient at the surface is the true surface normal.)"""
    radii = _t(radii, p)
    return ((p / radii).norm(dim=-1) - 1) * radii.amin(dim=-1)


def smooth_union(
    d1: Float[Tensor, "..."], d2: Float[Tensor, "..."], k: Like
) -> tuple[Float[Tensor, "..."], Float[Tensor, "..."]]:
    """Polynomial smooth minimum of two distances with blend radius k (k = 0: the plain minimum).

    Returns (distance, w) where w in [0, 1] is the weight of d1 (use it to blend the parts' colours). The result is
    <= min(d1, d2) and 1-Lipschitz when both inputs are, so sphere tracing on it stays safe.
    """
    k = _t(k, d1)
    w = (0.5 + 0.5 * (d2 - d1) / k.clamp(min=1e-8)).clamp(0, 1)
    return torch.lerp(d2, d1, w) - k * w * (1 - w), w
