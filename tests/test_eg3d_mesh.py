"""The generator's mesh (core/eg3d/bake.py): marching cubes of the baked raw density, vertex colours from the field, the
automatic level whose silhouette is the render's; `tristudio generate --mesh` and the viewer's export job."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from tristudio.core.cameras import Cameras
from tristudio.core.eg3d.bake import bake_grid, field_colors, silhouette_level, triplane_mesh
from tristudio.core.eg3d.load import load_generator
from tristudio.core.eg3d.sampling import generate, raw_views, view_label
from tristudio.core.render.triplane import triplane_field


@pytest.fixture(scope="module")
def shipped():
    """The shipped heads model and seed 0's tri-planes (as `tristudio generate` makes them)."""
    G = load_generator(None).eval()
    return G, generate(G, [0])["planes"]


def _trilinear(grid: torch.Tensor, points: np.ndarray, box: float) -> np.ndarray:
    """The grid's raw density (channel 3, [z][y][x], voxel centres at ((i + 0.5) / R - 1/2) * box) at world points,
    interpolated trilinearly between voxel centres: grid_sample with align_corners=False maps -1 / +1 to the outer
    voxels' outer faces, i.e. normalised coordinate = world / (box / 2)."""
    vol = grid[..., 3][None, None]  # (1, 1, D=z, H=y, W=x)
    xyz = torch.as_tensor(points, dtype=torch.float32) / (box / 2)  # grid_sample's (x, y, z) = (W, H, D)
    return F.grid_sample(vol, xyz[None, None, None], align_corners=False).reshape(-1).numpy()


def test_mesh_vertices_lie_on_the_level_of_the_baked_grid_with_the_fields_colours(shipped):
    G, planes = shipped
    box, r = float(G.rendering_kwargs["box_warp"]), 48
    grid = bake_grid(planes, G.decoder, r, box)
    level = float(grid[..., 3].quantile(0.9))
    mesh = triplane_mesh(planes, G.decoder, level, r, box)
    verts = np.asarray(mesh.vertices)
    assert len(verts) > 1000 and mesh.is_watertight  # closed at the box's faces
    # Marching cubes puts each vertex on a grid edge where the linear interpolation of the density equals the level;
    # trilinear interpolation agrees with it on edges. Vertices of the closing layer (beyond the outer voxel centres)
    # are left out: there the padding, not the grid, holds the density.
    inner = (np.abs(verts) < box / 2 - box / (2 * r) - 1e-6).all(axis=1)
    assert inner.mean() > 0.5
    s = _trilinear(grid, verts[inner], box)
    assert np.abs(s - level).max() < 1e-3 * (float(grid[..., 3].max()) - float(grid[..., 3].min()))
    # vertex colours: the field's RGB at the vertex, as uint8
    want = np.round(field_colors(planes, G.decoder, verts, box) * 255)
    got = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(float)
    assert np.abs(got - want).max() <= 1
    assert got.std(axis=0).min() > 5  # a coloured head, not a white default


def _silhouette_iou(G, planes, levels) -> list[float]:
    """Direct computation: per ray of the 3 views, march the field densely from ray_start to ray_end (inside the box)
    and count the ray as drawn at level L when its largest raw density exceeds L; IoU with opacity > 1/2."""
    box = float(G.rendering_kwargs["box_warp"])
    cams = Cameras.from_label(view_label(G, torch.tensor([-40.0, 0.0, 40.0]).deg2rad(), 0.0))
    drawn = raw_views(G, planes, cams, 64)["image_opacity"].reshape(-1) > 0.5
    rays = cams.rays(64)
    t = torch.linspace(G.rendering_kwargs["ray_start"], G.rendering_kwargs["ray_end"], 320)
    pts = rays.origins[..., None, :] + t[:, None] * rays.directions[..., None, :]  # (3, m, 320, 3)
    field = triplane_field(planes, G.decoder, box)
    with torch.no_grad():
        flat = pts.reshape(1, -1, 3)
        sigma = torch.cat([field(p, torch.zeros_like(p))["sigma"].reshape(-1) for p in flat.split(1 << 18, 1)])
    sigma = torch.where((pts.abs() <= box / 2).all(-1).reshape(-1), sigma, torch.tensor(-torch.inf))
    peak = sigma.reshape(drawn.shape[0], -1).amax(1)
    ious = []
    for level in levels:
        hit = peak > level
        ious.append(float((hit & drawn).sum() / (hit | drawn).sum()))
    return ious


def test_automatic_level_draws_the_renders_silhouette_better_than_any_fixed_level(shipped):
    G, planes = shipped
    auto = silhouette_level(G, planes)
    grid = bake_grid(planes, G.decoder, 32, float(G.rendering_kwargs["box_warp"]))[..., 3]
    levels = np.linspace(float(grid.min()), float(grid.max()), 41)[1:-1].tolist() + [10.0]
    iou_auto, *iou_fixed = _silhouette_iou(G, planes, [auto, *levels])
    print(f"auto level {auto:.3g}: IoU {iou_auto:.3f}; best fixed {max(iou_fixed):.3f}; level 10: {iou_fixed[-1]:.3f}")
    assert iou_auto > 0.9  # the mesh outlines what the user sees
    assert iou_auto >= max(iou_fixed) - 0.01
    assert iou_auto > iou_fixed[-1] + 0.05  # EG3D's fixed 10 (ChimeraX) cuts this small model's head short


def test_generate_mesh_cli_writes_one_mesh_per_seed_and_refuses_bad_options(shipped, tmp_path):
    import trimesh

    from tristudio.cli.app import app

    G, planes = shipped
    out = tmp_path / "gen"
    args = ["generate", "--seeds", "0", "--out", str(out), "--mesh", "--mesh-resolution", "32", "--device", "cpu"]
    res = CliRunner().invoke(app, [*args, "--mesh-format", "ply"])
    assert res.exit_code == 0, res.output
    mesh = trimesh.load(out / "seed0000.ply", process=False)
    assert mesh.is_watertight and len(mesh.faces) > 500
    level = silhouette_level(G, planes)
    assert f"level {level:.3g} (automatic" in res.output
    box = float(G.rendering_kwargs["box_warp"])
    same = triplane_mesh(planes, G.decoder, level, 32, box)
    assert np.allclose(np.asarray(mesh.vertices), np.asarray(same.vertices), atol=1e-6)
    # a format trimesh would not be asked for: refused before anything is written
    res = CliRunner().invoke(app, [*args[:4], str(tmp_path / "stl"), *args[5:], "--mesh-format", "stl"])
    assert res.exit_code == 2 and "--mesh-format" in res.output and not (tmp_path / "stl").exists()
    # options of the meshes or videos without --mesh / --video would be ignored: refused, naming them, nothing written
    for extra, flag in (
        (["--mesh-level", "5"], "--mesh"),
        (["--mesh-format", "ply", "--mesh-resolution", "64"], "--mesh"),
        (["--fps", "10"], "--video"),
    ):
        res = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "lvl"), *extra])
        said = " ".join(res.output.replace("│", " ").split())
        assert res.exit_code == 2 and f"add {flag}" in said and all(o in said for o in extra[::2]), said
        assert not (tmp_path / "lvl").exists()
    # a level the field never reaches: one line naming the range; the images already written stay
    res = CliRunner().invoke(app, [*args, "--mesh-level", "1e6"])
    assert res.exit_code == 1 and "outside the field's range" in res.output and "Traceback" not in res.output
    assert "no mesh for 1 of 1 seeds: seed 0:" in " ".join(res.output.split())
    assert (out / "seed0000.png").is_file() and (out / "seed0000.ply").is_file()


def test_viewer_mesh_job_uses_the_automatic_level(shipped, tmp_path):
    import trimesh

    from tristudio.viewer.capture import export_mesh
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.state import Eg3dState
    from tristudio.viewer.workers import Job

    G, _ = shipped
    engine = GeneratorSession(G)
    spec = Eg3dState().latent_spec()
    planes, _ = engine.planes(spec)
    job = Job("mesh", fn=None)
    message = export_mesh(job, engine, spec, 32, None, tmp_path / "m.glb")
    level = silhouette_level(G, planes)
    assert job.extra["level"] == pytest.approx(level) and "(automatic)" in message
    mesh = trimesh.load(tmp_path / "m.glb", force="mesh", process=False)
    assert len(mesh.faces) == job.extra["faces"] and not list(tmp_path.glob("*.tmp*"))


def test_no_automatic_level_for_an_empty_render_names_the_range_to_pick_from(shipped):
    import copy

    G, planes = shipped
    faint = copy.deepcopy(G)
    with torch.no_grad():  # the decoder's density output far below zero: softplus(s - 1) ~ 0, nothing is drawn
        last = [m for m in faint.decoder.modules() if hasattr(m, "bias") and m.bias is not None][-1]
        last.bias[0] -= 60.0
    with pytest.raises(ValueError, match=r"opacity stays below 1/2 \(at most 0\.0\d\); give a level in .* \[-\d"):
        silhouette_level(faint, planes)


def test_cancel_stops_an_export_before_anything_is_written(shipped, tmp_path):
    from tristudio.viewer.capture import export_mesh
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.state import Eg3dState
    from tristudio.viewer.workers import Job, JobCancelled

    G, _ = shipped
    engine, spec = GeneratorSession(G), Eg3dState().latent_spec()
    for level in (None, 6.0):  # while matching the silhouette, while baking
        job = Job("mesh", fn=None)
        job.cancel()
        with pytest.raises(JobCancelled):
            export_mesh(job, engine, spec, 32, level, tmp_path / "m.ply")
    assert not list(tmp_path.iterdir())
