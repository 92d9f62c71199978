"""NeRF volume rendering: stratified + importance sampling and alpha compositing; one renderer for both families.

Rays are (N, M, 3) origins and unit directions (see `Cameras.rays`). A *field* is any function

    field(coords: (N, P, 3) world points, dirs: (N, P, 3) unit directions) -> {"sigma": (N, P, 1), "rgb": (N, P, C)}

The compositing is EG3D's midpoint ray marcher (MipRayMarcher2). For K sorted samples t_0 < ... < t_{K-1} with
colours c_i and raw densities s_i on a ray:

    delta_i = t_{i+1} - t_i,   c_i' = (c_i + c_{i+1}) / 2,   t_i' = (t_i + t_{i+1}) / 2,
    sigma_i = act((s_i + s_{i+1}) / 2)              act = softplus(x - 1) (EG3D) | identity (density given)
    alpha_i = 1 - exp(-sigma_i delta_i),   T_i = prod_{j<i} (1 - alpha_j + 1e-10),   w_i = alpha_i T_i
    C = sum_i w_i c_i'  (+ (1 - sum w) if white_back),   depth = sum_i w_i t_i' / sum_i w_i,   opacity = sum_i w_i

and EG3D maps features to [-1, 1] by C * 2 - 1 (`signed_output`). Depth is the ray distance t, not camera z.

Sampling: `depth_resolution` stratified samples on [ray_start, ray_end] (linspace + U[0, 1) * delta jitter in
training, + 0.5 * delta in deterministic mode), then `depth_resolution_importance` samples drawn by inverse CDF from
the coarse weights (EG3D's max-pool / avg-pool blur + 0.01), u ~ U[0, 1) or u_i = (i + 0.5) / N when deterministic;
both sets are decoded, merged, sorted, and composited in a final pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "RenderOptions",
    "RenderOutput",
    "render_rays",
    "render_triplanes",
    "composite",
    "sample_stratified",
    "sample_pdf",
    "ray_box_limits",
]


@dataclass
class RenderOptions:
    """Sampling and compositing settings (EG3D's rendering_kwargs names where they exist)."""

    ray_start: float | str = 2.25  # near bound, or "auto" = ray / box intersection
    ray_end: float | str = 3.3  # far bound, or "auto"
    box_warp: float = 1.0  # side of the field's box [-box_warp/2, box_warp/2]^3
    depth_resolution: int = 48  # coarse (stratified) samples per ray
    depth_resolution_importance: int = 48  # fine (importance) samples per ray; 0 disables the fine pass
    white_back: bool = False
    density_activation: str = "softplus_shift"  # EG3D: softplus(s - 1); "identity": the field gives sigma >= 0
    signed_output: bool = True  # EG3D: features * 2 - 1
    disparity_space_sampling: bool = False
    deterministic: bool = False  # mid-interval stratified depths, importance u_i = (i + 0.5) / N
    chunk: int = 2048  # rays per field evaluation batch (bounds memory; ~2k is cache-friendly on CPU)

    @classmethod
    def from_eg3d(cls, rendering_kwargs: dict, **overrides) -> "RenderOptions":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in rendering_kwargs.items() if k in names}
        if rendering_kwargs.get("clamp_mode", "softplus") != "softplus":
            raise ValueError(f"unsupported clamp_mode {rendering_kwargs['clamp_mode']!r} (EG3D supports 'softplus')")
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes) -> "RenderOptions":
        return RenderOptions(**{**asdict(self), **changes})


@dataclass
class RenderOutput:
    features: Float[Tensor, "n m c"]  # composited features (first 3 = RGB), in [-1, 1] if signed_output
    depth: Float[Tensor, "n m 1"]  # expected ray distance t of the weights, clamped to the sampled range
    opacity: Float[Tensor, "n m 1"]  # accumulated weight sum_i w_i


# ----------------------------------------------------------------------------- sampling


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


# ----------------------------------------------------------------------------- compositing


def _marcher_weights(
    densities: Float[Tensor, "n m s 1"], depths: Float[Tensor, "n m s 1"], opts: RenderOptions
) -> Float[Tensor, "n m s_1 1"]:
    """w_i = alpha_i T_i of the midpoint marcher (one weight per interval between consecutive samples)."""
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    if opts.density_activation == "softplus_shift":
        densities_mid = F.softplus(densities_mid - 1)
    elif opts.density_activation != "identity":
        raise ValueError(f"unknown density_activation {opts.density_activation!r}")
    alpha = 1 - torch.exp(-densities_mid * deltas)
    shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], dim=-2)
    return alpha * torch.cumprod(shifted, dim=-2)[:, :, :-1]


def _sample_weights(weights: Float[Tensor, "n m s_1 1"]) -> Float[Tensor, "n m s 1"]:
    """Per-*sample* weights v_j with sum_i w_i (c_i + c_{i+1}) / 2 = sum_j v_j c_j, i.e. v_j = (w_{j-1} + w_j) / 2."""
    return (F.pad(weights, (0, 0, 1, 0)) + F.pad(weights, (0, 0, 0, 1))) / 2


def _finish(rgb: Tensor, weights: Tensor, depths: Tensor, opts: RenderOptions) -> tuple[Tensor, Tensor]:
    total = weights.sum(dim=2)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    depth = torch.nan_to_num((weights * depths_mid).sum(dim=-2) / total, float("inf"))
    if opts.white_back:
        rgb = rgb + 1 - total
    if opts.signed_output:
        rgb = rgb * 2 - 1
    return rgb, depth


def composite(
    colors: Float[Tensor, "n m s c"],
    densities: Float[Tensor, "n m s 1"],
    depths: Float[Tensor, "n m s 1"],
    opts: RenderOptions,
) -> tuple[Float[Tensor, "n m c"], Float[Tensor, "n m 1"], Float[Tensor, "n m s_1 1"]]:
    """EG3D's midpoint ray marcher. Returns features, *unclamped* depth (inf where no weight) and weights."""
    weights = _marcher_weights(densities, depths, opts)
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    rgb, depth = _finish((weights * colors_mid).sum(dim=-2), weights, depths, opts)
    return rgb, depth, weights


def _decode(field, depths: Tensor, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    n, m, s, _ = depths.shape
    coords = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(n, m * s, 3)
    sample_dirs = dirs.unsqueeze(-2).expand(n, m, s, 3).reshape(n, m * s, 3)
    out = field(coords, sample_dirs)
    return out["rgb"].reshape(n, m, s, -1), out["sigma"].reshape(n, m, s, 1)


def _weighted_sum(v: Float[Tensor, "n m s 1"], colors: Float[Tensor, "n m s c"]) -> Float[Tensor, "n m c"]:
    return torch.matmul(v.transpose(-1, -2), colors).squeeze(-2)


def _render_chunk(field, origins, dirs, opts: RenderOptions):
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
    colors, densities = _decode(field, depths, origins, dirs)
    if opts.depth_resolution_importance > 0:
        fine = _importance_depths(
            depths, _marcher_weights(densities, depths, opts), opts.depth_resolution_importance, opts.deterministic
        )
        colors_f, densities_f = _decode(field, fine, origins, dirs)
        # Merge and sort the 1-channel depths and densities only; the per-sample compositing weights are scattered
        # back to the unsorted order so the (wide) colour tensors are never gathered or concatenated.
        all_depths, order = torch.sort(torch.cat([depths, fine], dim=-2), dim=-2)
        all_densities = torch.gather(torch.cat([densities, densities_f], dim=-2), -2, order)
        weights = _marcher_weights(all_densities, all_depths, opts)
        v = torch.zeros_like(all_depths).scatter(-2, order, _sample_weights(weights))
        s = depths.shape[2]
        rgb = _weighted_sum(v[:, :, :s], colors) + _weighted_sum(v[:, :, s:], colors_f)
        depths = all_depths
    else:
        weights = _marcher_weights(densities, depths, opts)
        rgb = _weighted_sum(_sample_weights(weights), colors)
    rgb, depth = _finish(rgb, weights, depths, opts)
    return rgb, depth, weights.sum(dim=2), depths.min(), depths.max()


def render_rays(
    field, origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"], opts: RenderOptions
) -> RenderOutput:
    """Render rays through a field, `opts.chunk` rays at a time (bounded memory; gradients flow through)."""
    if origins.shape != dirs.shape or origins.ndim != 3 or origins.shape[-1] != 3:
        raise ValueError(f"render_rays: origins/dirs must both be (N, M, 3), got {origins.shape} and {dirs.shape}")
    m = origins.shape[1]
    outs = [
        _render_chunk(field, origins[:, i : i + opts.chunk], dirs[:, i : i + opts.chunk], opts)
        for i in range(0, m, max(1, opts.chunk))
    ]
    rgb = torch.cat([o[0] for o in outs], dim=1)
    depth = torch.cat([o[1] for o in outs], dim=1)
    opacity = torch.cat([o[2] for o in outs], dim=1)
    # EG3D clamps depth to the sampled range of the whole batch (also replacing the inf of empty rays).
    lo = torch.stack([o[3] for o in outs]).min()
    hi = torch.stack([o[4] for o in outs]).max()
    depth = torch.clamp(depth, lo, hi)
    return RenderOutput(features=rgb, depth=depth, opacity=opacity)


def render_triplanes(
    planes: Float[Tensor, "n 3 c h w"],
    decoder,
    cameras,
    resolution: int,
    opts: RenderOptions,
    density_noise: float = 0.0,
) -> dict[str, Tensor]:
    """Render tri-planes from `cameras` (a `Cameras` batch of size N) at resolution x resolution.

    Returns {"features": (N, C, R, R), "depth": (N, 1, R, R), "opacity": (N, 1, R, R)}, rows top to bottom.
    """
    from .triplane import triplane_field

    rays = cameras.to(planes.device).rays(resolution)
    out = render_rays(
        triplane_field(planes, decoder, opts.box_warp, density_noise), rays.origins, rays.directions, opts
    )
    n = planes.shape[0]

    def to_image(x: Tensor) -> Tensor:
        return x.permute(0, 2, 1).reshape(n, x.shape[-1], resolution, resolution)

    return {"features": to_image(out.features), "depth": to_image(out.depth), "opacity": to_image(out.opacity)}
