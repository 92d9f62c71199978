"""DreamFusion's field, shading, view prompts, density-grid sampler and mesh export against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tristudio.core.dreamfusion.field import DensityAlbedoField
from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
from tristudio.core.dreamfusion.shading import shade
from tristudio.core.dreamfusion.views import orbit_views
from tristudio.core.priors import load_prior
from tristudio.core.render.occupancy import DensityGrid, OccupancyGridSampler
from tristudio.core.render.volume import RenderOptions, render_rays


def blob_field(**kw) -> DensityAlbedoField:
    """A field whose density is exactly DreamFusion's blob, softplus(d (1 - |x| / r)), and albedo sigmoid(b)."""
    cfg = DreamFusionConfig(prompt="a blob", plane_resolution=64, plane_channels=4, hidden=8, **kw)
    f = DensityAlbedoField.from_config(cfg)
    with torch.no_grad():
        f.mlp[-1].weight.zero_()
        f.mlp[-1].bias.copy_(torch.tensor([0.0, 2.0, -2.0, -2.0]))  # albedo sigmoid(2), sigmoid(-2), sigmoid(-2)
    return f


@pytest.fixture(scope="module")
def prior(tiny_prior_dir):
    return load_prior(tiny_prior_dir, device="cpu")


def test_view_dependent_prompts_pick_the_right_word(prior):
    df = DreamFusion(DreamFusionConfig(prompt="a red cube", grid_resolution=8), prior)
    d = math.radians
    yaw = torch.tensor([0.0, d(40), d(-46), d(90), d(136), d(180), d(-170), d(10)])
    pitch = torch.tensor([0.0, 0.0, 0.0, d(30), 0.0, d(-10), d(20), d(65)])
    words = ["front", "front", "side", "side", "back", "back", "back", "overhead"]
    assert df.prompts_for(yaw, pitch) == [f"a red cube, {w} view" for w in words]
    plain = DreamFusion(DreamFusionConfig(prompt="a red cube", view_dependent=False, grid_resolution=8), prior)
    assert plain.prompts_for(yaw, pitch) == ["a red cube"] * len(words)
    # the embeddings used in a step are those of the camera's prompt
    emb = df._embeddings(df.prompts_for(yaw[4:5], pitch[4:5]))
    ref = prior.encode_prompt(["a red cube, back view"])
    torch.testing.assert_close(emb.cond, ref.cond)


def test_shading_modes_follow_their_formulas():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 5, 3, generator=g)
    o = torch.rand(2, 5, 1, generator=g)
    n = F.normalize(torch.randn(2, 5, 3, generator=g), dim=-1)
    lt = F.normalize(torch.randn(2, 5, 3, generator=g), dim=-1)
    amb = 0.2
    ndotl = (n * lt).sum(-1, keepdim=True)
    light = amb + (1 - amb) * torch.where(ndotl > 0, ndotl, torch.zeros_like(ndotl))
    torch.testing.assert_close(shade(a, o, n, lt, "albedo", amb), a)
    torch.testing.assert_close(shade(a, o, n, lt, "lambertian", amb), a * light)
    torch.testing.assert_close(shade(a, o, n, lt, "textureless", amb), (o * light).expand(2, 5, 3))
    assert (ndotl < 0).any()  # the clamp was exercised
    with pytest.raises(ValueError, match="unknown shading"):
        shade(a, o, n, lt, "phong")


def test_normals_of_a_blob_point_radially_outwards():
    f = blob_field()
    g = torch.Generator().manual_seed(0)
    dirs = F.normalize(torch.randn(1, 200, 3, generator=g), dim=-1)
    x = dirs * (0.1 + 0.3 * torch.rand(1, 200, 1, generator=g))
    n = f.normals(x)
    cos = (n * dirs).sum(-1)
    assert float(cos.detach().min()) > 0.999


def _bare_blob(prior, **config) -> DreamFusion:
    """DreamFusion with the field's last layer zeroed: the density is the initial blob alone."""
    df = DreamFusion(
        DreamFusionConfig(prompt="a ball", blob_density=40.0, grid_resolution=16, samples=32, **config), prior
    )
    with torch.no_grad():
        df.field.mlp[-1].weight.zero_()
        df.field.mlp[-1].bias.zero_()
    return df


def test_textureless_blob_is_brightest_where_the_normal_faces_the_light(prior):
    df = _bare_blob(prior, light="camera")
    cam = orbit_views(1)
    with torch.no_grad():
        out = df.render(cam, 24, "textureless", background=False)
    img, opac = out["image"][0, 0], out["opacity"][0, 0]
    centre = float(img[11:13, 11:13].mean())
    inside = opac > 0.9
    assert inside.sum() > 10
    rim = float(img[inside & (img < centre)].min())
    assert centre > 0.85 and rim < centre - 0.05
    torch.testing.assert_close(out["image"][0], out["image"][0, :1].expand(3, -1, -1))  # white material: grey


def test_grid_sampler_matches_the_dense_renderer_on_a_blob():
    f = blob_field(blob_density=40.0)
    grid = DensityGrid(32, 0.5)
    grid.update(f.density, torch.Generator().manual_seed(0))
    rays = orbit_views(2).rays(24)
    with torch.no_grad():
        grid_opts = RenderOptions(density_activation="identity", signed_output=False, deterministic=True)
        sampler = OccupancyGridSampler(grid, n_samples=48)
        fast = render_rays(f.field_fn(), rays.origins, rays.directions, grid_opts, sampler)
        ref = render_rays(
            f.field_fn(),
            rays.origins,
            rays.directions,
            RenderOptions(
                ray_start="auto",
                ray_end="auto",
                box_warp=1.0,
                depth_resolution=128,
                depth_resolution_importance=64,
                density_activation="identity",
                signed_output=False,
                deterministic=True,
            ),
        )
    assert 0.1 < fast.active.float().mean() < 0.8  # empty corners skipped, the blob sampled
    d_opacity, d_rgb = (fast.opacity - ref.opacity).abs(), (fast.features - ref.features).abs()
    assert d_opacity.mean() < 0.005 and d_rgb.mean() < 0.005  # measured: 0.0015, 0.0006
    assert d_opacity.max() < 0.08  # a few silhouette pixels (measured 0.04)


def test_mesh_of_a_blob_is_closed_with_the_analytic_radius(tmp_path):
    import trimesh

    from tristudio.core.mesh import extract_mesh, save_mesh

    density, radius, level = 5.0, 0.25, 2.0
    f = blob_field(blob_density=density, blob_radius=radius)
    # softplus(d (1 - |x| / r)) = level  <=>  |x| = r (1 - softplus^-1(level) / d)
    r_iso = radius * (1 - math.log(math.expm1(level)) / density)
    mesh = extract_mesh(f.density, level, lambda x: f(x)[1], bound=0.5, resolution=48)
    assert mesh.is_watertight and mesh.is_winding_consistent
    rad = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(rad.mean() - r_iso) < 0.004 and rad.std() < 0.004
    assert mesh.volume > 0
    assert abs(mesh.volume - 4 / 3 * math.pi * r_iso**3) / (4 / 3 * math.pi * r_iso**3) < 0.05
    colors = mesh.visual.vertex_colors[:, :3].astype(int)
    expected = np.round(255 / (1 + np.exp(-np.array([2.0, -2.0, -2.0])))).astype(int)
    assert np.abs(colors - expected).max() <= 1
    for ext in ("ply", "obj", "glb"):
        path = save_mesh(mesh, tmp_path / f"blob.{ext}")
        back = trimesh.load(path, force="mesh", process=ext != "obj")
        assert len(back.faces) == len(mesh.faces)
        if ext == "ply":
            assert np.abs(back.visual.vertex_colors[:, :3].astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="unsupported mesh format"):
        save_mesh(mesh, tmp_path / "blob.stl")
    with pytest.raises(ValueError, match="outside the field's range"):
        extract_mesh(f.density, 1000.0, bound=0.5, resolution=16)


def test_world_light_lights_the_blob_from_the_worlds_light_direction(prior):
    """light "world": a directional light along Shading.light_dir: the brightest textureless pixel is where the
    blob's normal points at the light, i.e. where the ray hits the blob at  n = l."""
    from tristudio.core.worlds.render import Shading

    df = _bare_blob(prior, light="world", ambient=0.35)
    cam = orbit_views(1)
    with torch.no_grad():
        out = df.render(cam, 32, "textureless", background=False)
    img, opac, normal = out["image"][0, 0], out["opacity"][0, 0], out["normal"][0]
    light = F.normalize(torch.tensor(Shading.light_dir), dim=0)
    inside = opac > 0.9
    ndotl = (normal * light[:, None, None]).sum(0)
    brightest = torch.where(inside, img, torch.zeros_like(img)).argmax()
    assert float(ndotl.flatten()[brightest]) > 0.95
    shadowed = inside & (ndotl < 0)
    assert shadowed.any()
    torch.testing.assert_close(img[shadowed], 0.35 * opac[shadowed], atol=2e-3, rtol=0)  # ambient only


def test_auto_settings_follow_the_prior(prior):
    """tristudio's small-world prior gets the worlds' look (white background, world light, ambient 0.35, its own
    resolution); any other layout DreamFusion's (MLP background, camera light, 0.1, 64 px)."""
    from types import SimpleNamespace

    from tristudio.core.dreamfusion.optimize import resolve_for_prior

    small = resolve_for_prior(DreamFusionConfig(prompt="a ball"), prior)
    assert (small.background, small.light, small.ambient, small.resolution) == (
        "white",
        "world",
        0.35,
        prior.resolution,
    )
    sd = resolve_for_prior(DreamFusionConfig(prompt="a ball"), SimpleNamespace(layout="sd", resolution=512))
    assert (sd.background, sd.light, sd.ambient, sd.resolution) == ("mlp", "camera", 0.1, 64)
    mine = resolve_for_prior(DreamFusionConfig(prompt="a ball", background="mlp", resolution=48, ambient=0.2), prior)
    assert (mine.background, mine.resolution, mine.ambient) == ("mlp", 48, 0.2)


def test_background_modes_and_random_solid_backgrounds(prior):
    cfg = DreamFusionConfig(prompt="a ball", grid_resolution=16, samples=8, background="white")
    df = DreamFusion(cfg, prior)
    cam = orbit_views(2)
    with torch.no_grad():
        white = df.render(cam, 16, "albedo")
        solid = df.render(cam, 16, "albedo", background=torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    o = white["opacity"]
    torch.testing.assert_close(
        white["image"] - solid["image"],
        (1 - o) * (1 - torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])[:, :, None, None]),
    )
    with pytest.raises(ValueError, match="unknown background"):
        DreamFusion(DreamFusionConfig(prompt="a ball", background="sky"), prior)


def test_guidance_scale_defaults_follow_the_method_and_the_prior(prior):
    from types import SimpleNamespace

    from tristudio.core.dreamfusion.guidance import GUIDANCE_DEFAULTS, default_guidance_scale
    from tristudio.core.dreamfusion.optimize import resolve_for_prior

    assert default_guidance_scale("sds", "pixel-clip") == 5.0  # the small-world prior
    assert default_guidance_scale("sds", "sd") == GUIDANCE_DEFAULTS["sds"] == 100.0  # DreamFusion's
    assert default_guidance_scale("vsd", "pixel-clip") == GUIDANCE_DEFAULTS["vsd"] == 7.5
    assert resolve_for_prior(DreamFusionConfig(prompt="a ball"), prior).guidance_scale == 5.0
    sd = resolve_for_prior(DreamFusionConfig(prompt="a ball", guidance="csd"), SimpleNamespace(layout="sd"))
    assert sd.guidance_scale == 10.0
    assert resolve_for_prior(DreamFusionConfig(prompt="a ball", guidance_scale=30.0), prior).guidance_scale == 30.0
    df = DreamFusion(DreamFusionConfig(prompt="a ball", grid_resolution=8, samples=8), prior)
    assert df.guidance.guidance_scale == 5.0
