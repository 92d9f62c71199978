"""Procedural worlds: exact SDFs, the sphere tracer's depth and normals, heads, view words and captions."""

from __future__ import annotations

import math

import pytest
import torch

from tristudio.core.cameras import FFHQ_FOV_DEG, FFHQ_PIVOT, FFHQ_RADIUS, Cameras
from tristudio.core.worlds import (
    HAIR_COLORS,
    SKIN_TONES,
    head_scene,
    object_caption,
    render,
    sample_heads,
    sample_objects,
    sdf,
    shape,
    union,
    view_word,
)
from tristudio.core.worlds.captions import head_caption


def _sphere_reference(cams: Cameras, res: int, center, radius):
    """float64 ray-sphere intersection for the renderer's own rays: (t, hit, |discriminant|, hit point)."""
    rays = cams.rays(res)
    o = rays.origins.double().reshape(-1, 3) - torch.tensor(center, dtype=torch.float64)
    d = torch.nn.functional.normalize(rays.directions.double().reshape(-1, 3), dim=-1)
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - radius**2)
    t = -b - disc.clamp(min=0).sqrt()
    return t, disc > 0, disc, o + t[:, None] * d


@pytest.fixture(scope="module")
def sphere_render():
    center, radius = (0.05, -0.03, 0.02), 0.3
    scene = shape("sphere", color=(0.8, 0.2, 0.2), radius=radius).translate(center)
    cams = Cameras.orbit(torch.tensor([0.0, 0.9]), torch.tensor([0.1, -0.4]), radius=2.7, fov_deg=18.837)
    return scene, cams, render(scene, cams, 48), center, radius


def test_sphere_depth_is_the_analytic_ray_distance(sphere_render):
    scene, cams, out, center, radius = sphere_render
    t, hit, disc, _ = _sphere_reference(cams, 48, center, radius)
    clear = disc.abs() > 2e-4  # rays passing the silhouette by more than ~3e-4 (> the tracer eps)
    assert torch.equal(out.mask.reshape(-1)[clear], hit[clear])
    assert hit.sum() > 500
    sel = hit & (disc.sqrt() > 0.2 * radius)  # incidence cosine > 0.2
    err = (out.depth.reshape(-1).double()[sel] - t[sel]).abs().max().item()
    assert err < 2e-5
    assert torch.isinf(out.depth.reshape(-1)[~hit & clear]).all()


def test_sphere_normals_are_radial(sphere_render):
    _, _, out, center, radius = sphere_render
    t, hit, disc, p = _sphere_reference(sphere_render[1], 48, center, radius)
    sel = hit & (disc.sqrt() > 0.2 * radius)
    expected = p[sel] / radius
    got = out.normals.reshape(-1, 3)[sel].double()
    assert (got - expected).norm(dim=-1).max() < 1e-3
    assert (out.normals.reshape(-1, 3)[~out.mask.reshape(-1)] == 0).all()


SDF_CASES = [
    (sdf.sphere, dict(radius=0.5), [((0, 0, 0), -0.5), ((1, 0, 0), 0.5), ((0.3, 0.4, 0), 0.0)]),
    (
        sdf.box,
        dict(half_size=(0.2, 0.3, 0.4)),
        [((0, 0, 0), -0.2), ((0.5, 0, 0), 0.3), ((0.5, 0.7, 0), 0.5), ((0.1, 0, 0.1), -0.1)],
    ),
    (
        sdf.rounded_box,
        dict(half_size=(0.3, 0.3, 0.3), rounding=0.1),
        [((0.5, 0, 0), 0.2), ((0.4, 0.4, 0), math.sqrt(0.08) - 0.1), ((0, 0, 0), -0.3)],
    ),
    (sdf.torus, dict(major=0.3, minor=0.1), [((0.3, 0, 0), -0.1), ((0, 0, 0), 0.2), ((0, 0.2, 0.3), 0.1)]),
    (
        sdf.cylinder,
        dict(radius=0.2, half_height=0.3),
        [((0, 0, 0), -0.2), ((0.5, 0, 0), 0.3), ((0, 0.5, 0), 0.2), ((0.5, 0.7, 0), 0.5), ((0.1, 0.25, 0), -0.05)],
    ),
    (
        sdf.cone,
        dict(radius=0.3, half_height=0.2),
        [((0, -0.3, 0), 0.1), ((0, 0.5, 0), 0.3), ((0, 0, 0), -0.12), ((0.6, -0.2, 0), 0.3), ((0.3, 0, 0), 0.12)],
    ),
    (sdf.capsule, dict(radius=0.1, half_height=0.2), [((0, 0.5, 0), 0.2), ((0.3, 0, 0), 0.2), ((0, 0, 0), -0.1)]),
    (sdf.ellipsoid, dict(radii=(0.2, 0.3, 0.4)), [((0.2, 0, 0), 0.0), ((0, 0, -0.4), 0.0), ((0.4, 0, 0), 0.2)]),
]


@pytest.mark.parametrize("fn, size, cases", SDF_CASES, ids=[c[0].__name__ for c in SDF_CASES])
def test_primitive_sdf_at_analytic_points(fn, size, cases):
    points = torch.tensor([p for p, _ in cases], dtype=torch.float32)
    expected = torch.tensor([d for _, d in cases])
    torch.testing.assert_close(fn(points, **size), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fn, size", [(c[0], c[1]) for c in SDF_CASES if c[0] is not sdf.ellipsoid])
def test_exact_sdfs_have_unit_gradient(fn, size):
    p = (torch.rand(2000, 3, generator=torch.Generator().manual_seed(0)) - 0.5).requires_grad_(True)
    (g,) = torch.autograd.grad(fn(p, **size).sum(), p)
    norms = g.norm(dim=-1)
    assert ((norms - 1).abs() < 1e-4).float().mean() > 0.995  # eikonal almost everywhere (not on medial axes)


def test_transforms_and_union_colours():
    box = shape("box", hx=0.1, hy=0.2, hz=0.3).rotate("z", 90).scaled(2.0).translate((1.0, 0.0, 0.0))
    # world half extents (0.4, 0.2, 0.6) around (1, 0, 0)
    torch.testing.assert_close(box(torch.tensor([[1.0, 0.5, 0.0], [1.6, 0.0, 0.0]])), torch.tensor([0.3, 0.2]))
    red = shape("sphere", color=(1, 0, 0), radius=0.2).translate((-0.3, 0, 0))
    blue = shape("sphere", color=(0, 0, 1), radius=0.2).translate((0.3, 0, 0))
    both = union(red, blue)
    pts = torch.tensor([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(both(pts), torch.tensor([0.0, 0.0, 0.1]))
    torch.testing.assert_close(both.albedo(pts[:2]), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    smooth = union(red, shape("sphere", color=(0, 0, 1), blend=0.1, radius=0.2).translate((0.3, 0, 0)))
    assert smooth(pts[2:]).item() < 0.1 - 1e-3  # the smooth union bridges the gap


def test_heads_are_deterministic_per_seed_and_differ_across_seeds():
    pts = torch.rand(4000, 3, generator=torch.Generator().manual_seed(1)) - 0.5
    a1, hair1, skin1 = head_scene(3)
    a2, hair2, skin2 = head_scene(3)
    b, _, _ = head_scene(4)
    assert torch.equal(a1(pts), a2(pts)) and (hair1, skin1) == (hair2, skin2)
    assert (a1(pts) - b(pts)).abs().max() > 5e-3
    assert torch.equal(sample_heads([3]).scene(pts), a1(pts))  # batching does not change a head
    words = {(h, s) for h, s in zip(*(lambda hb: (hb.hair, hb.skin))(sample_heads(40)), strict=True)}
    assert len(words) > 5 and all(h in HAIR_COLORS and s in SKIN_TONES for h, s in words)


def test_heads_fit_the_box_and_face_the_frontal_ffhq_camera():
    heads = sample_heads(4, start=100)
    # every point of the box's surface is outside every head
    g = torch.linspace(-0.5, 0.5, 21)
    u, v = torch.meshgrid(g, g, indexing="ij")
    faces = [
        torch.stack([s * torch.full_like(u, 0.5) if k == a else (u if k == (a + 1) % 3 else v) for k in range(3)], -1)
        for a in range(3)
        for s in (-1, 1)
    ]
    boundary = torch.cat([f.reshape(-1, 3) for f in faces])
    for b in range(4):
        idx = torch.full((boundary.shape[0],), b)
        assert heads.scene.distance(boundary, idx).min() > 0
    front = Cameras.orbit(0.0, 0.0, radius=FFHQ_RADIUS, fov_deg=FFHQ_FOV_DEG, pivot=FFHQ_PIVOT, center=(0, 0, 0))
    back = Cameras.orbit(math.pi, 0.0, radius=FFHQ_RADIUS, fov_deg=FFHQ_FOV_DEG, pivot=FFHQ_PIVOT, center=(0, 0, 0))
    out_f, out_b = render(heads.scene, front, 32), render(heads.scene, back, 32)
    coverage = out_f.mask.float().mean(dim=(1, 2))
    assert ((coverage > 0.3) & (coverage < 0.9)).all(), coverage
    for b in range(4):  # the centre of the frontal view is skin (face), of the back view hair
        skin = torch.tensor(SKIN_TONES[heads.skin[b]])
        hair = torch.tensor(HAIR_COLORS[heads.hair[b]])
        for out, cam, colour in ((out_f, front, skin), (out_b, back, hair)):
            rays = cam.rays(32)
            p = rays.origins[0, 15 * 32 + 16] + out.depth[b, 15, 16] * rays.directions[0, 15 * 32 + 16]
            _, albedo, _ = heads.scene.surface(p[None], torch.tensor([b]))
            assert (albedo[0] - colour).abs().max() < 0.1


def test_supersampling_antialiases_only_the_edges():
    scene = shape("sphere", color=(0.2, 0.4, 0.9), radius=0.3)
    cam = Cameras.orbit(0.0, 0.0, radius=2.5, fov_deg=30.0)
    plain, ss = render(scene, cam, 24), render(scene, cam, 24, supersample=2)
    assert torch.equal(plain.depth, ss.depth) and torch.equal(plain.mask, ss.mask)
    partial = (ss.alpha > 0) & (ss.alpha < 1)
    assert partial.sum() > 10  # silhouette pixels get fractional coverage
    inner = ~partial & plain.mask
    assert torch.equal(ss.alpha[inner], torch.ones_like(ss.alpha[inner]))
    assert ss.rgb.min() >= 0 and ss.rgb.max() <= 1


@pytest.mark.parametrize(
    "yaw_deg, pitch_deg, word",
    [
        (0, 0, "front view"),
        (44, 10, "front view"),
        (-46, 0, "side view"),
        (100, 30, "side view"),
        (170, 0, "back view"),
        (-136, 20, "back view"),
        (190, 0, "back view"),
        (10, 61, "overhead view"),
        (180, 75, "overhead view"),
    ],
)
def test_view_words_follow_dreamfusion_thresholds(yaw_deg, pitch_deg, word):
    assert view_word(math.radians(yaw_deg), math.radians(pitch_deg)) == word


def test_captions():
    assert object_caption("cube", "red", "shiny") == "a shiny red cube"
    assert object_caption("sphere", "orange") == "an orange sphere"
    assert object_caption("torus", "blue", "matte", "side view") == "a matte blue torus, side view"
    assert head_caption("black", "light") == "a head with black hair and light skin"
    with pytest.raises(ValueError, match="unknown colour"):
        object_caption("cube", "mauve")
    objs = sample_objects(3)
    assert objs.captions() == [
        object_caption(s, c, m) for s, c, m in zip(objs.shape, objs.color, objs.material, strict=True)
    ]
    assert view_word(torch.tensor([0.0, math.pi]), torch.tensor(0.0)) == ["front view", "back view"]
