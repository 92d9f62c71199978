"""Where the renderer evaluates a field along its rays: samplers that feed core/render/volume.py's one renderer.

A sampler is called on a chunk of rays and returns `RaySamples`: the sorted ray distances t (along unit directions)
at which the renderer must evaluate the field, and optionally

  * `coarse`: samples the sampler has already evaluated to place the others (EG3D's coarse pass), which the renderer
    composites together with the new ones instead of evaluating them again;
  * `active`: the rays worth evaluating at all (the occupancy grid skips rays that cannot hit anything); `depths`
    then holds the active rays only, as a (1, R, K, 1) batch;
  * `far`: each ray's far bound, the depth reported for rays whose weights are all zero.

Two samplers exist:

    StratifiedImportanceSampler   EG3D / NeRF: S stratified depths on [near, far], the field decoded there, then K
                                  importance depths drawn by inverse CDF from the (blurred) coarse weights
    OccupancyGridSampler          (core/render/occupancy.py) K depths drawn from a cached density grid's weights,
                                  no coarse field pass; rays the grid calls empty are skipped

Stratified depths (EG3D's sample_stratified): linspace(near, far, S) + jitter * delta, delta = (far - near) / (S - 1),
jitter ~ U[0, 1) in training, 0.5 when deterministic; in disparity space the same on 1/t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from .compositing import marcher_weights
from .field import Field

if TYPE_CHECKING:
    from .volume import RenderOptions

__all__ = [
    "RaySamples",
    "Sampler",
    "StratifiedImportanceSampler",
    "decode_samples",
    "ray_box_limits",
    "sample_pdf",
    "sample_stratified",
]


@dataclass
class RaySamples:
    """Sample depths for one chunk of N x M rays (see the module docstring)."""

    depths: Float[Tensor, "n m k 1"]  # sorted distances t to evaluate; (1, R, K, 1) over active rays when `active`
    coarse: tuple[Tensor, Tensor, Tensor] | None = None  # evaluated (depths (n m s 1), colours (n m s c), sigma)
    active: Bool[Tensor, "n m"] | None = None  # rays to evaluate; None = all
    far: Float[Tensor, "n m 1"] | None = None  # per-ray far bound (the depth of empty rays); None = EG3D's clamp


class Sampler(Protocol):
    def __call__(
        self, field: Field, origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"], opts: RenderOptions
    ) -> RaySamples: ...


def ray_box_limits(
    origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"], box_side: float
) -> tuple[Float[Tensor, "n m 1"], Float[Tensor, "n m 1"], Tensor]:
    """Entry / exit distances of rays through the box [-box_side/2, box_side/2]^3 (slab test) and a hit mask."""
    half = box_side / 2
    inv = 1.0 / torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t0 = (-half - origins) * inv
    t1 = (half - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1, keepdim=True).clamp_min(0.0)
    t_far = torch.maximum(t0, t1).amin(dim=-1, keepdim=True)
    return t_near, t_far, (t_far > t_near)


def sample_stratified(
    ray_start: Float[Tensor, "n m 1"],
    ray_end: Float[Tensor, "n m 1"],
    n_samples: int,
    deterministic: bool,
    disparity: bool = False,
) -> Float[Tensor, "n m s 1"]:
    """EG3D's stratified depths: linspace(start, end, S) + jitter * delta, delta = (end - start) / (S - 1)."""
    steps = torch.linspace(0, 1, n_samples, device=ray_start.device, dtype=ray_start.dtype)  # (s,)
    if disparity:
        near_disp, far_disp = 1.0 / ray_start, 1.0 / ray_end
        disp = near_disp[..., None] * (1 - steps[:, None]) + far_disp[..., None] * steps[:, None]  # (n, m, s, 1)
        delta = 1.0 / (n_samples - 1)
        jitter = 0.5 if deterministic else torch.rand_like(disp)
        return 1.0 / (disp + jitter * delta * (far_disp - near_disp)[..., None])
    depths = ray_start[..., None] + (ray_end - ray_start)[..., None] * steps[:, None]  # (n, m, s, 1)
    delta = ((ray_end - ray_start) / (n_samples - 1))[..., None]
    jitter = 0.5 if deterministic else torch.rand_like(depths)
    return depths + jitter * delta


def sample_pdf(
    bins: Float[Tensor, "r b"],
    weights: Float[Tensor, "r b_minus_1"],
    n_samples: int,
    deterministic: bool,
    eps: float = 1e-5,
) -> Float[Tensor, "r k"]:
    """Inverse-CDF sampling of a piecewise-constant pdf (weights between consecutive bins); EG3D/NeRF's sample_pdf."""
    n_rays, n_w = weights.shape
    weights = weights + eps
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)  # (r, n_w + 1)
    if deterministic:
        u = (torch.arange(n_samples, device=bins.device, dtype=bins.dtype) + 0.5) / n_samples
        u = u.expand(n_rays, n_samples).contiguous()
    else:
        u = torch.rand(n_rays, n_samples, device=bins.device, dtype=bins.dtype)
    idx = torch.searchsorted(cdf, u, right=True)
    below = (idx - 1).clamp_min(0)
    above = idx.clamp_max(n_w)
    both = torch.stack([below, above], -1).reshape(n_rays, 2 * n_samples)
    cdf_g = torch.gather(cdf, 1, both).reshape(n_rays, n_samples, 2)
    bins_g = torch.gather(bins, 1, both).reshape(n_rays, n_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def decode_samples(
    field: Field, depths: Float[Tensor, "n m s 1"], origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"]
) -> tuple[Float[Tensor, "n m s c"], Float[Tensor, "n m s 1"]]:
    """The field at the points origins + t * dirs: colours / features and raw densities per sample."""
    n, m, s, _ = depths.shape
    coords = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(n, m * s, 3)
    sample_dirs = dirs.unsqueeze(-2).expand(n, m, s, 3).reshape(n, m * s, 3)
    out = field(coords, sample_dirs)
    return out["rgb"].reshape(n, m, s, -1), out["sigma"].reshape(n, m, s, 1)


def _importance_depths(
    depths: Float[Tensor, "n m s 1"], weights: Float[Tensor, "n m s_1 1"], n_importance: int, deterministic: bool
) -> Float[Tensor, "n m k 1"]:
    """EG3D's sample_importance: blur the coarse weights (max-pool 2, avg-pool 2, + 0.01), sample the mid-bins."""
    n, m, s, _ = depths.shape
    with torch.no_grad():
        z = depths.reshape(n * m, s)
        w = weights.reshape(n * m, 1, -1).float()
        w = F.max_pool1d(w, 2, 1, padding=1)
        w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
        z_mid = 0.5 * (z[:, :-1] + z[:, 1:])
        fine = sample_pdf(z_mid, w[:, 1:-1], n_importance, deterministic)
    return fine.detach().reshape(n, m, n_importance, 1)


class StratifiedImportanceSampler:
    """EG3D's two passes: `depth_resolution` stratified depths on [ray_start, ray_end] (or the ray's segment in the
    box when "auto"), decoded; then `depth_resolution_importance` depths from the coarse weights (0: none)."""

    def __call__(
        self, field: Field, origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"], opts: RenderOptions
    ) -> RaySamples:
        if opts.ray_start == "auto" or opts.ray_end == "auto":
            start, end, hit = ray_box_limits(origins, dirs, opts.box_warp)
            if hit.any():  # EG3D: rays that miss the box get the extreme bounds of the rays that hit
                start = torch.where(hit, start, start[hit].min())
                end = torch.where(hit, end, start[hit].max())
            else:
                end = start + 1e-3
        else:
            start = torch.full_like(origins[..., :1], float(opts.ray_start))
            end = torch.full_like(origins[..., :1], float(opts.ray_end))
        depths = sample_stratified(start, end, opts.depth_resolution, opts.deterministic, opts.disparity_space_sampling)
        if opts.depth_resolution_importance <= 0:
            return RaySamples(depths)
        colors, densities = decode_samples(field, depths, origins, dirs)
        weights = marcher_weights(densities, depths, opts.density_activation)
        fine = _importance_depths(depths, weights, opts.depth_resolution_importance, opts.deterministic)
        return RaySamples(fine, coarse=(depths, colors, densities))
