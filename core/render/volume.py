"""NeRF volume rendering: one renderer for both families (EG3D's tri-planes, DreamFusion's field, the fits).

    render_rays(field, origins (N, M, 3), dirs (N, M, 3), opts, sampler=None) -> RenderOutput

A *field* (core/render/field.py) maps points and directions to raw density and features; a *sampler*
(core/render/samplers.py) says where along each ray to evaluate it: by default EG3D's stratified + importance passes
(`StratifiedImportanceSampler`), or a cached occupancy grid (core/render/occupancy.py, DreamFusion). The renderer
evaluates the field at the sampler's depths (on the active rays only, when the sampler skips some), merges them with
samples the sampler already evaluated, and composites them with EG3D's midpoint marcher (core/render/compositing.py),
`opts.chunk` rays at a time.

Depth of rays with no weight: the ray's far bound when the sampler knows it (the occupancy grid: the box exit), else
EG3D's rule: every depth is clamped to the sampled range of the whole batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from .compositing import finish, marcher_weights, sample_weights, weighted_sum
from .field import Field
from .samplers import RaySamples, Sampler, StratifiedImportanceSampler, decode_samples

__all__ = ["RenderOptions", "RenderOutput", "render_rays", "render_triplanes"]


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
    depth: Float[Tensor, "n m 1"]  # expected ray distance t of the weights; see the module doc for empty rays
    opacity: Float[Tensor, "n m 1"]  # accumulated weight sum_i w_i
    active: Bool[Tensor, "n m"] | None = None  # rays the field was evaluated on (None: all); the others are empty


def _render_chunk(field: Field, origins: Tensor, dirs: Tensor, opts: RenderOptions, sampler: Sampler):
    """One chunk: (features (n m c), depth (n m 1), opacity (n m 1), min and max sampled depth, active or None)."""
    samples: RaySamples = sampler(field, origins, dirs, opts)
    n, m, _ = origins.shape
    if samples.active is not None:  # evaluate the active rays only, as one (1, R) batch
        o, d = origins[samples.active][None], dirs[samples.active][None]
    else:
        o, d = origins, dirs
    if o.shape[1] == 0:  # no ray can hit anything: all empty, the field's channel count from one probe
        with torch.no_grad():
            c = field(origins[:1, :1], dirs[:1, :1])["rgb"].shape[-1]
        return origins.new_zeros(n, m, c), samples.far.clone(), origins.new_zeros(n, m, 1), None, None, samples.active
    colors, densities = decode_samples(field, samples.depths, o, d)
    if samples.coarse is not None:
        coarse_depths, coarse_colors, coarse_densities = samples.coarse
        # Merge and sort the 1-channel depths and densities only; the per-sample compositing weights are scattered
        # back to the unsorted order so the (wide) colour tensors are never gathered or concatenated.
        depths, order = torch.sort(torch.cat([coarse_depths, samples.depths], dim=-2), dim=-2)
        all_densities = torch.gather(torch.cat([coarse_densities, densities], dim=-2), -2, order)
        weights = marcher_weights(all_densities, depths, opts.density_activation)
        v = torch.zeros_like(depths).scatter(-2, order, sample_weights(weights))
        s = coarse_depths.shape[2]
        rgb = weighted_sum(v[:, :, :s], coarse_colors) + weighted_sum(v[:, :, s:], colors)
    else:
        depths = samples.depths
        weights = marcher_weights(densities, depths, opts.density_activation)
        rgb = weighted_sum(sample_weights(weights), colors)
    rgb, depth = finish(rgb, weights, depths, opts)
    opacity = weights.sum(dim=2)
    if samples.far is not None:
        far = samples.far[samples.active][None] if samples.active is not None else samples.far
        depth = torch.minimum(depth, far)
    if samples.active is not None:  # scatter the active rays back; the others are empty, at their far bound
        full_rgb, full_opacity, full_depth = (
            origins.new_zeros(n, m, rgb.shape[-1]),
            origins.new_zeros(n, m, 1),
            samples.far.clone(),
        )
        full_rgb[samples.active], full_opacity[samples.active], full_depth[samples.active] = (
            rgb[0],
            opacity[0],
            depth[0],
        )
        rgb, opacity, depth = full_rgb, full_opacity, full_depth
    return rgb, depth, opacity, depths.min(), depths.max(), samples.active


def render_rays(
    field: Field,
    origins: Float[Tensor, "n m 3"],
    dirs: Float[Tensor, "n m 3"],
    opts: RenderOptions,
    sampler: Sampler | None = None,
) -> RenderOutput:
    """Render rays through a field, `opts.chunk` rays at a time (bounded memory; gradients flow through).

    sampler: where to evaluate the field (default: EG3D's stratified + importance passes, from `opts`)."""
    if origins.shape != dirs.shape or origins.ndim != 3 or origins.shape[-1] != 3:
        raise ValueError(f"render_rays: origins/dirs must both be (N, M, 3), got {origins.shape} and {dirs.shape}")
    sampler = sampler or StratifiedImportanceSampler()
    m = origins.shape[1]
    outs = [
        _render_chunk(field, origins[:, i : i + opts.chunk], dirs[:, i : i + opts.chunk], opts, sampler)
        for i in range(0, m, max(1, opts.chunk))
    ]
    rgb = torch.cat([o[0] for o in outs], dim=1)
    depth = torch.cat([o[1] for o in outs], dim=1)
    opacity = torch.cat([o[2] for o in outs], dim=1)
    active = None if outs[0][5] is None else torch.cat([o[5] for o in outs], dim=1)
    if active is None:
        # EG3D clamps depth to the sampled range of the whole batch (also replacing the inf of empty rays).
        lo = torch.stack([o[3] for o in outs]).min()
        hi = torch.stack([o[4] for o in outs]).max()
        depth = torch.clamp(depth, lo, hi)
    return RenderOutput(features=rgb, depth=depth, opacity=opacity, active=active)


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
