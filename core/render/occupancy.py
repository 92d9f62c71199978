"""A coarse density grid that tells the renderer where the field is empty (instant-ngp's occupancy grid, as a
proposal distribution like mip-NeRF 360's proposal network, but a cached grid instead of a network).

The grid holds, per cell of an R^3 lattice over the box [-bound, bound]^3 (indexed [z][y][x], cell centres at
((i + 0.5) / R * 2 - 1) * bound), a decayed running maximum of the field's density at a random point of the cell:

    D <- max(decay * D, sigma(cell centre + U(-1/2, 1/2)^3 * cell size))            (every `grid_every` steps)

Sampling a ray with the grid (`OccupancyGridSampler`, a sampler of core/render/volume.py's renderer):
  1. S_p proposal depths, evenly spaced over the ray's segment in the box; densities from the max-pooled (dilated)
     grid by trilinear interpolation; the midpoint marcher's weights w_p of those densities;
  2. rays whose proposal opacity sum(w_p) < min_opacity are *skipped* (no field evaluation; they show background);
  3. on the others, K depths drawn by inverse CDF from w_p (blurred, plus a floor), where the renderer evaluates the
     field (with gradients) and composites.
So the field runs on K points of the rays that can hit something, instead of coarse + fine points of every ray.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ..mesh import voxel_centres
from .compositing import marcher_weights
from .field import Field
from .samplers import RaySamples, ray_box_limits, sample_pdf, sample_stratified

__all__ = ["DensityGrid", "OccupancyGridSampler"]


class DensityGrid:
    def __init__(self, resolution: int = 32, bound: float = 0.5, decay: float = 0.95, device=None):
        self.resolution, self.bound, self.decay = resolution, bound, decay
        self.density = torch.zeros(resolution, resolution, resolution, device=device)  # (R, R, R) [z][y][x]
        self._dilated: Tensor | None = None

    def cell_centres(self) -> Float[Tensor, "r3 3"]:
        r = self.resolution
        axis = voxel_centres(r, 2 * self.bound).to(self.density.device)  # the baked grids' lattice (core/mesh.py)
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


class OccupancyGridSampler:
    """K field samples per ray placed by a `DensityGrid` (see the module docstring); empty rays are skipped.

    The grid's box is [-bound, bound]^3; `opts.density_activation` must be "identity" (the grid holds sigma)."""

    def __init__(self, grid: DensityGrid, n_samples: int = 24, n_proposal: int = 64, min_opacity: float = 1e-2):
        self.grid, self.n_samples, self.n_proposal, self.min_opacity = grid, n_samples, n_proposal, min_opacity

    @torch.no_grad()
    def __call__(self, field: Field, origins: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"], opts) -> RaySamples:
        start, end, hit = ray_box_limits(origins, dirs, 2 * self.grid.bound)  # (n, m, 1) each
        end = torch.where(hit, end, start + 1e-3)
        z = sample_stratified(start, end, self.n_proposal, deterministic=True)  # (n, m, S_p, 1), mid-interval depths
        sig = self.grid.query(origins[:, :, None] + z * dirs[:, :, None])  # (n, m, S_p, 1)
        w = marcher_weights(sig, z, "identity")  # (n, m, S_p - 1, 1)
        active = (w.sum(dim=(2, 3)) > self.min_opacity) & hit[..., 0]  # (n, m)
        za, wa = z[active][..., 0], w[active][..., 0]  # (r, S_p), (r, S_p - 1)
        wa = F.max_pool1d(wa[:, None], 3, stride=1, padding=1)[:, 0]  # blur: sample a little around each peak
        wa = wa + 1e-3 * wa.sum(-1, keepdim=True) + 1e-6  # a floor: some samples everywhere along the ray
        depths = sample_pdf(za, wa, self.n_samples, opts.deterministic).sort(dim=-1).values  # (r, K)
        return RaySamples(depths[None, :, :, None], active=active, far=end)
