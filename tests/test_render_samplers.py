"""The renderer's samplers: the occupancy grid's empty rays and their depth (the ray's exit from the box)."""

from __future__ import annotations

import torch

from tristudio.core.cameras import Cameras
from tristudio.core.render.occupancy import DensityGrid, OccupancyGridSampler
from tristudio.core.render.samplers import ray_box_limits
from tristudio.core.render.volume import RenderOptions, render_rays

OPTS = RenderOptions(density_activation="identity", signed_output=False, deterministic=True)


def _empty_field(coords, dirs):
    n, p, _ = coords.shape
    return {"sigma": coords.new_zeros(n, p, 1), "rgb": coords.new_full((n, p, 3), 0.5)}


def test_active_rays_with_no_weight_report_their_far_bound():
    """A grid that believes the whole box is dense makes every ray that hits the box active; the field is empty, so
    each ray has zero opacity and its depth must be its own exit distance from the box (not inf, not a batch clamp)."""
    grid = DensityGrid(8, 0.5)
    grid.load(torch.full((8, 8, 8), 50.0))
    rays = Cameras.orbit(torch.tensor([0.0, 0.7]), torch.tensor([0.1, -0.2]), radius=2.0, fov_deg=40.0).rays(10)
    out = render_rays(_empty_field, rays.origins, rays.directions, OPTS, OccupancyGridSampler(grid, n_samples=8))
    _, far, hit = ray_box_limits(rays.origins, rays.directions, 1.0)
    assert out.active is not None and torch.equal(out.active, hit[..., 0])  # all hitting rays sampled
    assert hit.float().mean() > 0.3
    assert torch.isfinite(out.depth).all()
    torch.testing.assert_close(out.depth[hit], far[hit])
    assert float(out.opacity.abs().max()) == 0.0 and float(out.features.abs().max()) == 0.0


def test_a_grid_with_nothing_in_it_skips_every_ray():
    grid = DensityGrid(8, 0.5)  # zeros: no ray can hit anything
    rays = Cameras.orbit(0.3, 0.0, radius=2.0, fov_deg=40.0).rays(6)
    calls = []

    def field(coords, dirs):
        calls.append(coords.shape[1])
        return _empty_field(coords, dirs)

    out = render_rays(field, rays.origins, rays.directions, OPTS, OccupancyGridSampler(grid, n_samples=8))
    assert not out.active.any()
    assert calls == [1]  # one probe point for the channel count, no samples
    _, far, hit = ray_box_limits(rays.origins, rays.directions, 1.0)
    end = torch.where(hit, far, 0 * far)
    torch.testing.assert_close(out.depth[hit], end[hit])
    assert out.features.shape == (1, 36, 3)  # the field's channel count, from the one probe
    assert float(out.opacity.abs().max()) == 0.0 and float(out.features.abs().max()) == 0.0  # nothing composited
