"""A coarse density grid that tells the renderer where the field is empty (instant-ngp's occupancy grid, as a
proposal distribution like mip-NeRF 360's proposal network, but a cached grid instead of a network).

The grid holds, per cell of an R^3 lattice over the box [-bound, bound]^3 (indexed [z][y][x], cell centres at
((i + 0.5) / R * 2 - 1) * bound), a decayed running maximum of the field's density at a random point of the cell:

    D <- max(decay * D, sigma(cell centre + U(-1/2, 1/2)^3 * cell size))            (every `grid_every` steps)

Rendering a ray with the grid (`render_with_grid`):
  1. S_p proposal depths, evenly spaced over the ray's segment in the box; densities from the max-pooled (dilated)
     grid by trilinear interpolation; the midpoint marcher's weights w_p of those densities;
  2. rays whose proposal opacity sum(w_p) < min_opacity are *skipped* (no field evaluation; they show background);
  3. on the others, K depths drawn by inverse CDF from w_p (blurred, plus a floor), the field evaluated there (with
     gradients) and composited by core/render/volume.py's marcher.
So the field runs on K points of the rays that can hit something, instead of coarse + fine points of every ray.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from ..render.volume import RenderOptions, composite, ray_box_limits, sample_pdf, sample_stratified

__all__ = ["DensityGrid", "GridRender", "render_with_grid"]


class DensityGrid:
    def __init__(self, resolution: int = 32, bound: float = 0.5, decay: float = 0.95, device=None):
        self.resolution, self.bound, self.decay = resolution, bound, decay
        self.density = torch.zeros(resolution, resolution, resolution, device=device)  # (R, R, R) [z][y][x]
        self._dilated: Tensor | None = None

    def cell_centres(self) -> Float[Tensor, "r3 3"]:
        r = self.resolution
        axis = ((torch.arange(r, dtype=torch.float32, device=self.density.device) + 0.5) / r * 2 - 1) * self.bound
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        return torch.stack([x, y, z], dim=-1).reshape(-1, 3)  # (R^3, 3) world xyz, [z][y][x] order

    @torch.no_grad()
    def update(self, density_fn, gen: torch.Generator, chunk: int = 65536) -> None:
        """density_fn: (1, P, 3) world points -> (1, P, 1) sigma. Jitter drawn from `gen` (checkpointed)."""
        r = self.resolution
        cell = 2 * self.bound / r
        pts = self.cell_centres() + (torch.rand(r**3, 3, generator=gen) - 0.5).to(self.density.device) * cell
        sigma = torch.cat([density_fn(pts[None, i : i + chunk])[0, :, 0] for i in range(0, r**3, chunk)])
        self.density = torch.maximum(self.density * self.decay, sigma.reshape(r, r, r).float())
        self._dilated = None

    def load(self, density: Tensor) -> None:
        if density.shape != self.density.shape:
            raise ValueError(f"density grid: expected {tuple(self.density.shape)}, got {tuple(density.shape)}")
        self.density = density.to(self.density.device, torch.float32).clone()
        self._dilated = None

    def dilated(self) -> Float[Tensor, "r r r"]:
        """Max over each cell's 3^3 neighbourhood: a conservative grid (geometry may grow one cell per update)."""
        if self._dilated is None:
            self._dilated = F.max_pool3d(self.density[None, None], 3, stride=1, padding=1)[0, 0]
        return self._dilated

    def query(self, points: Float[Tensor, "... 3"]) -> Float[Tensor, "... 1"]:
        """Trilinear density of the dilated grid at world points (zero outside the box)."""
        shape = points.shape[:-1]
        g = (points.reshape(1, 1, 1, -1, 3) / self.bound).to(torch.float32)  # grid_sample's (x, y, z) in [-1, 1]
        out = F.grid_sample(self.dilated()[None, None], g, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.reshape(*shape, 1)


class GridRender:
    """Per-ray results (N, M, .) of `render_with_grid`; rays not in `active` carry zeros (depth: the ray's exit)."""

    def __init__(self, features, depth, opacity, active):
        self.features: Float[Tensor, "n m c"] = features
        self.depth: Float[Tensor, "n m 1"] = depth
        self.opacity: Float[Tensor, "n m 1"] = opacity
        self.active: Bool[Tensor, "n m"] = active


def render_with_grid(
    field,
    grid: DensityGrid,
    origins: Float[Tensor, "n m 3"],
    dirs: Float[Tensor, "n m 3"],
    n_samples: int = 24,
    n_proposal: int = 64,
    min_opacity: float = 1e-2,
    deterministic: bool = False,
) -> GridRender:
    """Render rays through `field` (the renderer's field interface) with samples placed by the density grid."""
    n, m, _ = origins.shape
    opts = RenderOptions(density_activation="identity", signed_output=False, white_back=False)
    with torch.no_grad():
        start, end, hit = ray_box_limits(origins, dirs, 2 * grid.bound)  # (n, m, 1) each
        end = torch.where(hit, end, start + 1e-3)
        z = sample_stratified(start, end, n_proposal, deterministic=True)  # (n, m, S_p, 1), mid-interval depths
        sig = grid.query(origins[:, :, None] + z * dirs[:, :, None])  # (n, m, S_p, 1)
        _, _, w = composite(torch.zeros_like(z), sig, z, opts)  # w: (n, m, S_p - 1, 1)
        active = (w.sum(dim=(2, 3)) > min_opacity) & hit[..., 0]  # (n, m)
        za, wa = z[active][..., 0], w[active][..., 0]  # (r, S_p), (r, S_p - 1)
        wa = F.max_pool1d(wa[:, None], 3, stride=1, padding=1)[:, 0]  # blur: sample a little around each peak
        wa = wa + 1e-3 * wa.sum(-1, keepdim=True) + 1e-6  # a floor: some samples everywhere along the ray
        depths = sample_pdf(za, wa, n_samples, deterministic).sort(dim=-1).values  # (r, K)
    r = depths.shape[0]
    if r == 0:  # nothing to hit: every ray shows the background
        return GridRender(origins.new_zeros(n, m, 3), end.clone(), origins.new_zeros(n, m, 1), active)
    o_a, d_a = origins[active], dirs[active]  # (r, 3)
    depths = depths[None, :, :, None]  # (1, r, K, 1)
    pts = (o_a[:, None] + depths[0] * d_a[:, None]).reshape(1, r * n_samples, 3)
    out = field(pts, d_a[:, None].expand(r, n_samples, 3).reshape(1, r * n_samples, 3))
    colors = out["rgb"].reshape(1, r, n_samples, -1)
    sigma = out["sigma"].reshape(1, r, n_samples, 1)
    rgb, depth, weights = composite(colors, sigma, depths, opts)  # (1, r, C), (1, r, 1), (1, r, K - 1, 1)
    opacity = weights.sum(dim=2)  # (1, r, 1)
    depth = torch.minimum(torch.nan_to_num(depth, float("inf")), end[active][None])

    c = colors.shape[-1]
    features = origins.new_zeros(n, m, c)
    features[active] = rgb[0]
    full_opacity = origins.new_zeros(n, m, 1)
    full_opacity[active] = opacity[0]
    full_depth = end.clone()
    full_depth[active] = depth[0]
    return GridRender(features, full_depth, full_opacity, active)
