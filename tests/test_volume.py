"""The volume renderer against closed forms: transmittance, the depth of an opaque sphere, importance sampling."""

import math

import pytest
import torch

from tristudio.core.cameras import Cameras
from tristudio.core.render.samplers import ray_box_limits, sample_pdf
from tristudio.core.render.volume import RenderOptions, render_rays


def _constant_field(sigma: float, color=(0.2, 0.4, 0.6)):
    c = torch.tensor(color)

    def field(coords, dirs):
        n, p, _ = coords.shape
        return {"sigma": torch.full((n, p, 1), sigma), "rgb": c.expand(n, p, 3)}

    return field


def _sphere_field(radius=0.3, inside=1e3, center=(0.0, 0.0, 0.0)):
    ctr = torch.tensor(center)

    def field(coords, dirs):
        d = (coords - ctr).norm(dim=-1, keepdim=True)
        sigma = torch.where(d < radius, torch.full_like(d, inside), torch.zeros_like(d))
        return {"sigma": sigma, "rgb": torch.ones_like(coords) * 0.5}

    return field


def _rays(n_rays=16, seed=0):
    """(origins, directions), each (1, n_rays, 3) in the world frame: every ray starts at (0, 0, 2.7) and points
    along -z, tilted by at most ~5 deg (x, y at most 0.06 before normalising): it passes the origin at depth ~2.7."""
    g = torch.Generator().manual_seed(seed)
    o = torch.zeros(1, n_rays, 3)
    o[..., 2] = 2.7
    d = torch.nn.functional.normalize(
        torch.cat([torch.randn(1, n_rays, 2, generator=g).clamp(-2, 2) * 0.03, -torch.ones(1, n_rays, 1)], -1), dim=-1
    )
    return o, d


def _opts(importance: int, deterministic: bool = True, **kw) -> RenderOptions:
    """The renderer settings most tests here share: depths [2.0, 3.4] in 48 coarse samples (spacing 1.4 / 47), raw
    density used as sigma, and `importance` fine samples."""
    return RenderOptions(
        ray_start=2.0,
        ray_end=3.4,
        depth_resolution=48,
        depth_resolution_importance=importance,
        density_activation="identity",
        deterministic=deterministic,
        **kw,
    )


@pytest.mark.parametrize("importance", [0, 48])
@pytest.mark.parametrize("s", [0.5, 2.0])
def test_constant_density_transmittance_is_exp_minus_s_L(s, importance):
    opts = _opts(importance, signed_output=False)
    o, d = _rays()
    out = render_rays(_constant_field(s), o, d, opts)
    length = 3.4 - 2.0  # samples span [start + delta/2, end + delta/2]: total length end - start
    transmittance = 1 - out.opacity
    assert torch.allclose(transmittance, torch.full_like(transmittance, math.exp(-s * length)), atol=1e-4)
    # the composited colour is opacity * colour on a black background
    assert torch.allclose(out.features, out.opacity * torch.tensor([0.2, 0.4, 0.6]), atol=1e-5)


def test_eg3d_density_activation_is_softplus_shift():
    raw = 0.7
    opts = RenderOptions(
        ray_start=2.0, ray_end=3.0, depth_resolution=32, depth_resolution_importance=0, deterministic=True
    )
    o, d = _rays(4)
    out = render_rays(_constant_field(raw), o, d, opts)
    s = math.log1p(math.exp(raw - 1))
    assert torch.allclose(1 - out.opacity, torch.full_like(out.opacity, math.exp(-s * 1.0)), atol=1e-5)
    # EG3D maps composited features to [-1, 1]: c * 2 - 1
    assert torch.allclose(out.features, out.opacity * torch.tensor([0.2, 0.4, 0.6]) * 2 - 1, atol=1e-5)


def test_white_background_fills_empty_rays():
    opts = RenderOptions(
        white_back=True,
        depth_resolution_importance=8,
        deterministic=True,
        signed_output=False,
        density_activation="identity",
    )
    o, d = _rays(4)
    out = render_rays(_constant_field(0.0), o, d, opts)
    assert torch.allclose(out.features, torch.ones_like(out.features))
    assert torch.all(out.opacity == 0)
    # a half-transparent medium: colour * opacity + white * transmittance
    half = render_rays(_constant_field(0.5, color=(0.2, 0.4, 0.6)), o, d, opts)
    assert 0.2 < float(half.opacity.min()) and float(half.opacity.max()) < 0.9
    expect = half.opacity * torch.tensor([0.2, 0.4, 0.6]) + (1 - half.opacity)
    torch.testing.assert_close(half.features, expect, atol=1e-5, rtol=0)


def test_deterministic_importance_samples_are_the_mid_quantiles():
    """Inverse-CDF sampling of a piecewise-constant pdf at u = (k + 0.5) / K: uniform weights give the mid-quantiles
    of the whole range, weight on one bin gives the mid-quantiles of that bin."""
    bins = torch.linspace(0.0, 1.0, 9)[None]  # 8 bins
    flat = sample_pdf(bins, torch.ones(1, 8), 4, deterministic=True)
    torch.testing.assert_close(flat, torch.tensor([[0.125, 0.375, 0.625, 0.875]]), atol=1e-6, rtol=0)
    one = torch.zeros(1, 8)
    one[0, 5] = 1.0  # all the mass on [0.625, 0.75]
    got = sample_pdf(bins, one, 4, deterministic=True)
    expect = 0.625 + 0.125 * (torch.arange(4) + 0.5) / 4
    torch.testing.assert_close(got, expect[None], atol=2e-4, rtol=0)  # eps = 1e-5 spreads a little mass


def _sphere_depth(o, d, radius):
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius**2
    return -b - torch.sqrt(b * b - c)


@pytest.mark.parametrize("deterministic", [True, False])
def test_opaque_sphere_depth_stratified_within_one_spacing(deterministic):
    torch.manual_seed(0)
    opts = _opts(0, deterministic=deterministic)
    o, d = _rays(64)
    out = render_rays(_sphere_field(0.3), o, d, opts)
    spacing = (3.4 - 2.0) / 47
    err = (out.depth[..., 0] - _sphere_depth(o, d, 0.3)).abs()
    assert err.max() < spacing
    assert (out.opacity > 0.999).all()


@pytest.mark.parametrize("deterministic", [True, False])
def test_opaque_sphere_depth_with_importance_within_quarter_spacing(deterministic):
    torch.manual_seed(0)
    opts = _opts(48, deterministic=deterministic)
    o, d = _rays(64)
    out = render_rays(_sphere_field(0.3), o, d, opts)
    spacing = (3.4 - 2.0) / 47
    err = (out.depth[..., 0] - _sphere_depth(o, d, 0.3)).abs()
    assert err.max() < spacing / 4


def test_importance_samples_concentrate_where_the_weights_are():
    # a pdf with 90% of its mass in one bin: ~90% of the samples land in that bin
    bins = torch.linspace(0, 1, 21).expand(4, 21)
    weights = torch.full((4, 20), 0.1 / 19)
    weights[:, 7] = 0.9
    for det in (True, False):
        t = sample_pdf(bins, weights, 1000, deterministic=det)
        inside = ((t >= bins[0, 7]) & (t <= bins[0, 8])).float().mean()
        assert inside == pytest.approx(0.9, abs=0.03)
        assert (t >= 0).all() and (t <= 1).all()


def test_fine_samples_land_near_the_surface():
    # EG3D's sampler: with an opaque sphere most importance samples fall within two coarse spacings of the hit
    from tristudio.core.render.samplers import StratifiedImportanceSampler

    opts = _opts(48)
    o, d = _rays(32)
    field = _sphere_field(0.3)
    samples = StratifiedImportanceSampler()(field, o, d, opts)
    depths, fine = samples.coarse[0], samples.depths[..., 0]
    hit = _sphere_depth(o, d, 0.3)[..., None]
    spacing = 1.4 / 47
    frac = ((fine - hit).abs() < 2 * spacing).float().mean()
    coarse_frac = ((depths[..., 0] - hit).abs() < 2 * spacing).float().mean()  # ~4 of 48 samples
    assert frac > 0.6 and frac > 6 * coarse_frac


def test_chunking_does_not_change_the_result_and_gradients_flow():
    planes_like = torch.randn(1, 3, 1, requires_grad=True)

    def field(coords, dirs):
        sigma = (coords * planes_like[:, 0]).sum(-1, keepdim=True).exp()
        return {"sigma": sigma, "rgb": torch.sigmoid(coords * planes_like[:, 1])}

    opts = RenderOptions(
        depth_resolution=16, depth_resolution_importance=16, deterministic=True, density_activation="identity"
    )
    o, d = _rays(50)
    a = render_rays(field, o, d, opts.replace(chunk=7))
    b = render_rays(field, o, d, opts.replace(chunk=1000))
    assert torch.allclose(a.features, b.features, atol=1e-6) and torch.allclose(a.depth, b.depth, atol=1e-6)
    a.features.sum().backward()
    assert planes_like.grad is not None and torch.isfinite(planes_like.grad).all() and planes_like.grad.abs().sum() > 0


def test_auto_bounds_from_box():
    o, d = _rays(8)
    t0, t1, hit = ray_box_limits(o, d, 1.0)
    assert hit.all()
    # entering the z = +0.5 face, leaving z = -0.5 (rays are nearly -z)
    assert torch.allclose(t0[..., 0] * d[..., 2] + o[..., 2], torch.full((1, 8), 0.5), atol=1e-5)
    assert torch.allclose(t1[..., 0] * d[..., 2] + o[..., 2], torch.full((1, 8), -0.5), atol=1e-5)
    opts = RenderOptions(
        ray_start="auto",
        ray_end="auto",
        depth_resolution=48,
        depth_resolution_importance=48,
        density_activation="identity",
        deterministic=True,
    )
    out = render_rays(_sphere_field(0.3), o, d, opts)
    assert (out.depth[..., 0] - _sphere_depth(o, d, 0.3)).abs().max() < (1.0 / 47) / 4


def test_render_triplanes_image_layout_matches_rays():
    # density only where world y > 0 (plane 0 is indexed (x, y); rows of the plane array follow y): the upper half
    # of the world must fill the top rows of the image (camera y points down), and nothing else.
    from tristudio.core.render.volume import render_triplanes

    planes = torch.zeros(1, 3, 1, 16, 16)
    planes[:, 0, 0, 8:, :] = 3 * 100.0  # y > 0 (averaging over 3 planes divides by 3)

    def decoder(sampled):
        sigma = sampled.mean(1)  # (n, m, 1)
        return {"sigma": sigma, "rgb": torch.ones(*sigma.shape[:2], 3)}

    cams = Cameras.orbit(0.0, 0.0, 2.7)
    opts = RenderOptions(deterministic=True, density_activation="identity", signed_output=False)
    out = render_triplanes(planes, decoder, cams, 8, opts)
    assert out["features"].shape == (1, 3, 8, 8) and out["depth"].shape == (1, 1, 8, 8)
    opacity = out["opacity"][0, 0]
    assert (opacity[:3] > 0.99).all() and (opacity[5:] < 0.01).all()
