"""Heads v2: part signs at known points, identity parameters move the geometry, centring at every yaw, the
rebalanced camera distribution, identity records in made datasets."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from tristudio.core.cameras import FFHQ_FOV_DEG, FFHQ_PIVOT, FFHQ_RADIUS, Cameras
from tristudio.core.worlds import render, sample_heads
from tristudio.core.worlds.camera_sampling import (
    REBALANCED_MAX_YAW_DEG,
    REBALANCED_SIDE_PROB,
    camera_yaw_pitch,
    head_cameras,
)
from tristudio.core.worlds.heads2 import (
    HAIR_STYLES,
    IDENTITY_PARAMS,
    build_head2,
    head2_identity,
    head2_scene,
    identity_vector,
    part_centre,
    sample_heads2,
)

YAWS = [-90.0, -60.0, -40.0, 0.0, 40.0, 60.0, 90.0]


def _orbit(yaws_deg):
    yaw = torch.tensor([math.radians(y) for y in yaws_deg])
    return Cameras.orbit(yaw, torch.zeros_like(yaw), radius=FFHQ_RADIUS, fov_deg=FFHQ_FOV_DEG, pivot=FFHQ_PIVOT)


def _centroid_offset(mask: torch.Tensor) -> torch.Tensor:
    """Mask centroid's horizontal offset from the image centre, as a fraction of the width: (n,)."""
    m = mask.float()
    xs = torch.arange(m.shape[-1]) + 0.5
    cx = (m.sum(1) * xs).sum(1) / m.sum((1, 2))
    return (cx - m.shape[-1] / 2) / m.shape[-1]


def test_parts_have_the_right_sign_and_colour_at_known_points():
    for seed in range(6):
        scene, idt = head2_scene(seed)
        inside = ["skull", "jaw", "nose_tip", "lips", "eye_l", "eye_r", "ear_l", "ear_r", "neck"]
        pts = torch.stack([part_centre(scene, n) for n in inside])
        assert (scene(pts) < 0).all(), (seed, scene(pts))
        pivot = torch.tensor(FFHQ_PIVOT)
        assert scene(pivot[None]).item() < -0.1  # the pivot is deep inside the head
        # the eyes' centres are dark (eye colour), the skull centre skin-coloured
        eye = scene.albedo(part_centre(scene, "eye_l")[None])[0]
        assert eye.max() < 0.2
        # glasses: a point on the left rim's circle is on the frame exactly when the head wears glasses
        rim = part_centre(scene, "eye_l")
        rim_c = part_centre(scene, "rim_l")
        if idt.glasses:
            r = 0.85 * 1.9 * idt.params["eye_radius"]  # HEAD_SCALE * rim major radius
            on_rim = rim_c + torch.tensor([r, 0.0, 0.0])
            assert scene(on_rim[None]).item() < 0
            assert rim_c[2] > rim[2]  # in front of the eye
        else:
            assert rim_c.norm() > 10  # parked far outside the box
        # the box's faces are outside every head (fits [-0.5, 0.5]^3)
        g = torch.linspace(-0.5, 0.5, 17)
        u, v = torch.meshgrid(g, g, indexing="ij")
        for axis in range(3):
            for s in (-0.5, 0.5):
                face = torch.stack(
                    [torch.full_like(u, s) if k == axis else (u if k == (axis + 1) % 3 else v) for k in range(3)], -1
                )
                assert scene(face.reshape(-1, 3)).min() > 0


def test_identity_parameters_change_the_geometry_measurably():
    idt, colors = head2_identity(5)
    base = build_head2(idt, colors)
    cam, R = _orbit([0.0]), 48
    out0 = render(base, cam, R)
    # a longer nose projection brings the nearest frontal depth closer to the camera by a comparable amount
    lo, hi = IDENTITY_PARAMS["nose_projection"]
    near = replace(idt, params={**idt.params, "nose_projection": lo})
    far = replace(idt, params={**idt.params, "nose_projection": hi})
    d_near = render(build_head2(near, colors), cam, R).depth.min().item()
    d_far = render(build_head2(far, colors), cam, R).depth.min().item()
    assert d_near - d_far > 0.5 * 0.85 * (hi - lo)
    # a wider jaw widens the lower face's silhouette (rows 65-88% down: jaw and chin)
    lo, hi = IDENTITY_PARAMS["jaw_width"]
    narrow = render(build_head2(replace(idt, params={**idt.params, "jaw_width": lo}), colors), cam, R)
    wide = render(build_head2(replace(idt, params={**idt.params, "jaw_width": hi}), colors), cam, R)
    rows = slice(int(R * 0.65), int(R * 0.88))
    assert wide.mask[0, rows].sum() > narrow.mask[0, rows].sum() + 20
    # glasses on/off changes the eye region only a little elsewhere
    flipped = render(build_head2(replace(idt, glasses=not idt.glasses), colors), cam, R)
    diff = (flipped.rgb - out0.rgb).abs().amax(-1)[0]
    assert diff[R * 5 // 16 : R * 5 // 8, R // 6 : R * 5 // 6].mean() > 3 * diff[R * 3 // 4 :, :].mean() + 0.005
    # the identity vector is a normalised description: in [0, 1], style one-hot, glasses flag
    vec = identity_vector(idt)
    assert vec.shape == (len(IDENTITY_PARAMS) + len(HAIR_STYLES) + 1,)
    assert vec.min() >= 0 and vec.max() <= 1 and vec[len(IDENTITY_PARAMS) : -1].sum() == 1
    torch.testing.assert_close(identity_vector(idt.to_json()), vec)


def test_heads_are_deterministic_and_varied():
    pts = torch.rand(3000, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    a, ia = head2_scene(7)
    b, ib = head2_scene(7)
    assert torch.equal(a(pts), b(pts)) and ia == ib
    assert torch.equal(sample_heads2([7]).scene.distance(pts, torch.zeros(3000, dtype=torch.long)), a(pts))
    ids = [head2_scene(s)[1] for s in range(40)]
    assert {i.hair_style for i in ids} == set(HAIR_STYLES)
    assert 3 <= sum(i.glasses for i in ids) <= 25
    vecs = torch.stack([identity_vector(i) for i in ids])
    assert (vecs[:, : len(IDENTITY_PARAMS)].std(0) > 0.15).all()  # every continuous parameter varies


def test_v2_heads_are_centred_at_every_yaw_and_v1_heads_are_not():
    cams = _orbit(YAWS)
    v2 = sample_heads2([0, 1, 2])
    for b in range(3):
        out = render(v2.scene[[b] * len(YAWS)], cams, 48)
        off = _centroid_offset(out.mask)
        assert off.abs().max() < 0.03, off
        assert out.mask[:, :, 0].sum() == 0 and out.mask[:, :, -1].sum() == 0  # nothing cut at the sides
    v1 = sample_heads([0])
    off1 = _centroid_offset(render(v1.scene[[0] * len(YAWS)], cams, 48).mask)
    assert off1[1] < -0.15 and off1[-2] > 0.15  # v1 slides ~20% of the width off-centre at +-60 deg


def test_rebalanced_cameras_have_more_side_views():
    seeds = list(range(3000))
    ffhq = head_cameras(seeds)
    assert torch.equal(ffhq.cam2world, head_cameras(seeds, "ffhq").cam2world)
    reb = head_cameras(seeds, "rebalanced")
    # EG3D's sampler puts the camera on a sphere around the world origin (looking at the pivot)
    yaw_f = camera_yaw_pitch(ffhq.cam2world)[0].rad2deg().abs()
    yaw_r = camera_yaw_pitch(reb.cam2world)[0].rad2deg().abs()
    frac_f = (yaw_f > 40).float().mean().item()
    frac_r = (yaw_r > 40).float().mean().item()
    p_gauss = math.erfc(math.radians(40) / 0.3 / math.sqrt(2))  # P(|N(0, 0.3)| > 40 deg)
    expected = REBALANCED_SIDE_PROB * (1 - 40 / REBALANCED_MAX_YAW_DEG) + (1 - REBALANCED_SIDE_PROB) * p_gauss
    assert abs(frac_f - p_gauss) < 0.01
    assert abs(frac_r - expected) < 0.03, (frac_r, expected)
    # the side-view bins (40..80 deg) are roughly flat in the rebalanced histogram
    hist = torch.histc(yaw_r[yaw_r > 40], bins=4, min=40, max=80)
    assert hist.min() > 0.7 * hist.max()
    # pitches keep the FFHQ spread: pitch = pi/2 - arccos(1 - 2v/pi) ~ (2/pi) (v - pi/2) for small deviations
    pitch_r = camera_yaw_pitch(reb.cam2world)[1]
    assert abs(pitch_r.std().item() - 2 / math.pi * 0.155) < 0.01
    with pytest.raises(ValueError, match="rebalanced"):
        head_cameras([0], "sideways")


def test_make_heads2_dataset_records_identities(tmp_path):
    from tristudio.core.data.make import DatasetSpec, make_dataset

    out = make_dataset(
        DatasetSpec("heads2", 3, 16, seed=0, supersample=1, cameras="rebalanced", ground_truth=True), tmp_path / "h2"
    )
    caps = json.loads((out / "captions.json").read_text())
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert len(caps) == 3 and len(labels) == 3
    for i, (_name, rec) in enumerate(sorted(caps.items())):
        idt = head2_scene(i)[1]
        assert rec["identity"] == json.loads(json.dumps(idt.to_json()))
        assert rec["hair"] == idt.hair and rec["skin"] == idt.skin
    # ground truth beside each image: the reference renderer's depth / normals / mask for that item's camera
    import numpy as np

    from tristudio.core.data.make import gt_name

    cams = head_cameras([0, 1, 2], "rebalanced")
    ref = render(sample_heads2([0, 1, 2]).scene, cams, 16)
    for i, name in enumerate(sorted(caps)):
        gt = np.load(out / gt_name(name))
        assert np.array_equal(gt["mask"], ref.mask[i].numpy())
        m = gt["mask"]
        assert np.allclose(gt["depth"][m].astype(np.float32), ref.depth[i].numpy()[m], rtol=1e-3)
        assert np.isinf(gt["depth"][~m]).all()
        n = gt["normals"][m].astype(np.float32) / 127
        assert np.abs(n - ref.normals[i].numpy()[m]).max() < 0.01
    labels_cams = torch.tensor([lab[1] for lab in labels])
    torch.testing.assert_close(labels_cams, cams.label())
    with pytest.raises(ValueError, match="heads worlds only"):
        make_dataset(DatasetSpec("objects", 1, 16, cameras="rebalanced"), tmp_path / "o")


def test_cli_make_options_and_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    runner = CliRunner()
    args = ["dataset", "make", "--count", "2", "--resolution", "8", "--supersample", "1"]
    r = runner.invoke(app, [*args, "--world", "objects", "--cameras", "rebalanced", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "heads worlds only" in r.output and not (tmp_path / "o").exists()
    r = runner.invoke(app, [*args, "--world", "heads2", "--ground-truth", "--out", str(tmp_path / "h.zip")])
    assert r.exit_code == 0, r.output
    import zipfile

    names = set(zipfile.ZipFile(tmp_path / "h.zip").namelist())
    assert {"gt/00000/img00000000.npz", "gt/00000/img00000001.npz", "captions.json"} <= names
    r = runner.invoke(app, ["eval", "pose", "--model", str(tmp_path / "none"), "--world", "heads3"])
    assert r.exit_code == 1 and "heads or heads2" in r.output
