"""Sampling a generator: seeds, cameras, truncation, the `tristudio generate` command (grid, depth, planes, video)."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tristudio.core.eg3d.generator import TriPlaneGenerator
from tristudio.core.eg3d.presets import preset
from tristudio.core.eg3d.sampling import conditioning_label, generate, parse_seeds, view_label, z_from_seeds


@pytest.fixture(scope="module")
def tiny_G():
    torch.manual_seed(0)
    G = TriPlaneGenerator(**preset("tiny")).eval()
    with torch.no_grad():  # give w_avg a value away from zero so truncation is visible
        G.backbone.mapping.w_avg.normal_()
    return G


def test_parse_seeds():
    assert parse_seeds("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_seeds("5") == [5]
    assert parse_seeds("3,0-3,1") == [3, 0, 1, 2]  # a seed named twice is one image (files are named by seed)
    assert len(parse_seeds("0-99999")) == 100_000
    with pytest.raises(ValueError, match="more than 100000 seeds"):
        parse_seeds("0-4294967295")  # refused at once, not after building the list
    for bad in ("", "a-b", "3-1", ","):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)
    assert parse_seeds("4294967295") == [2**32 - 1]  # numpy's RandomState takes 0 .. 2**32 - 1
    for bad, seed in (("-3", -3), ("4294967296", 2**32), ("4294967290-4294967299", 4294967299)):
        with pytest.raises(ValueError, match=f"seed {seed} is outside 0..4294967295"):
            parse_seeds(bad)


def test_seeds_give_eg3d_gen_samples_z():
    z = z_from_seeds([0, 42], 512)
    assert torch.equal(z[1], torch.from_numpy(np.random.RandomState(42).randn(512)).float())


def test_conditioning_camera_is_eg3d_frontal(tiny_G):
    c = conditioning_label(tiny_G, 2)
    assert c.shape == (2, 25)
    c2w = c[0, :16].reshape(4, 4)
    assert torch.allclose(c2w[:3, 3], torch.tensor([0.0, 0.0, 2.7]), atol=1e-6)  # EG3D: radius 2.7 on +z
    side = view_label(tiny_G, math.radians(90), 0.0)[0, :16].reshape(4, 4)
    assert side[0, 3] == pytest.approx(2.7, abs=1e-5)  # yaw 90 deg: camera on +x


def test_truncation_zero_makes_all_seeds_equal(tiny_G):
    out = generate(tiny_G, [0, 1, 2], truncation_psi=0.0, truncation_cutoff=None)
    assert torch.allclose(out["image"][0], out["image"][1], atol=1e-6)
    assert torch.allclose(out["image"][0], out["image"][2], atol=1e-6)
    full = generate(tiny_G, [0, 1], truncation_psi=1.0)
    assert (full["image"][0] - full["image"][1]).abs().max() > 1e-3


def test_generate_cli_writes_grid_depth_planes_and_video(tiny_G, tmp_path):
    from tristudio.cli.app import app
    from tristudio.core.eg3d.load import load_generator, save_generator
    from tristudio.core.io.checkpoint import load_checkpoint
    from tristudio.core.io.images import load_png
    from tristudio.core.io.video import read_video_info

    model = tmp_path / "model"
    save_generator(tiny_G, model)
    out = tmp_path / "gen"
    res = CliRunner().invoke(
        app,
        [
            "generate",
            "--model",
            str(model),
            "--seeds",
            "0-3",
            "--out",
            str(out),
            "--planes",
            "--video",
            "--frames",
            "6",
            "--fps",
            "6",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    s = tiny_G.img_resolution
    grid = load_png(out / "grid.png")
    assert grid.shape == (2 * s, 2 * s, 3)
    # the grid's top-left tile is seed 0's image
    assert np.array_equal(grid[:s, :s], load_png(out / "seed0000.png"))
    assert (out / "seed0003_depth.png").exists()
    info = read_video_info(out / "seed0001_orbit.mp4")
    assert info["frames"] == 6 and (info["height"], info["width"]) == (s, s)
    # saved tri-planes re-render to the saved image (same camera, deterministic)
    tensors, meta = load_checkpoint(out, name="seed0002_planes")
    G = load_generator(model)
    c = view_label(G, 0.0, 0.0)
    from tristudio.core.cameras import Cameras

    with torch.no_grad():
        img = G.render_planes(tensors["planes"], tensors["ws"], Cameras.from_label(c), deterministic=True)["image"]
    from tristudio.core.io.images import to_uint8

    assert np.abs(to_uint8(img)[0].astype(int) - load_png(out / "seed0002.png").astype(int)).max() <= 1


def test_generate_ctrl_c_keeps_the_seeds_done_and_says_so(tiny_G, tmp_path, monkeypatch):
    """Each seed's image is written as it is made: Ctrl-C on the third seed leaves the first two, identical to an
    uninterrupted run's, and a line saying how many."""
    import tristudio.core.eg3d.sampling as sampling
    from tristudio.cli.app import app
    from tristudio.core.eg3d.load import save_generator
    from tristudio.core.io.images import load_png

    model = tmp_path / "model"
    save_generator(tiny_G, model)
    args = ["generate", "--model", str(model), "--seeds", "0-3", "--device", "cpu", "--out"]
    assert CliRunner().invoke(app, [*args, str(tmp_path / "whole")]).exit_code == 0
    real, calls = sampling.generate, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sampling, "generate", interrupted)
    res = CliRunner().invoke(app, [*args, str(tmp_path / "cut")])
    said = " ".join(res.output.split())
    assert res.exit_code != 0 and "holds the images of the first 2 of 4 seeds" in said and "from before" not in said
    done = ["seed0000.png", "seed0000_depth.png", "seed0001.png", "seed0001_depth.png"]
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == done
    for name in done:
        assert np.array_equal(load_png(tmp_path / "cut" / name), load_png(tmp_path / "whole" / name))
    calls.clear()  # into a folder of an earlier run: the mix is said
    res = CliRunner().invoke(app, [*args, str(tmp_path / "whole")])
    assert "its other files are from before this run" in " ".join(res.output.split())
    # depth maps share the camera's ray range (near = bright): one seed's map does not depend on the others
    from tristudio.core.io.images import depth_to_uint8

    rk = tiny_G.rendering_kwargs
    r = real(tiny_G, [1], 0.7, 14, 0.0, 0.0, 18.837, None, device="cpu")
    want = depth_to_uint8(r["image_depth"], rk["ray_start"], rk["ray_end"])[0]
    got = load_png(tmp_path / "whole" / "seed0001_depth.png")
    assert np.abs(got[..., 0].astype(int) - want[..., 0].astype(int)).max() <= 1


def test_generate_cli_bad_model_is_one_clear_line(tmp_path):
    from tristudio.cli.app import app

    res = CliRunner().invoke(app, ["generate", "--model", str(tmp_path / "nope.pkl"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "nope.pkl" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        (["--seeds=-3"], "--seeds", "seed -3 is outside 0..4294967295"),  # numpy's error, after the bar started
        (["--seeds", "4294967296"], "--seeds", "seed 4294967296 is outside"),
        (["--video", "--frames", "10", "--fps", "1000000"], "--fps", "1000000 is above the maximum 240"),  # fps 0 MP4
        (["--video", "--fps", "0"], "--fps", "0 is below the minimum 1"),
    ],
)
def test_generate_cli_refuses_seeds_and_fps_naming_the_option(args, option, words, tmp_path):
    from tristudio.cli.app import app

    res = CliRunner().invoke(app, ["generate", *args, "--out", str(tmp_path / "o")])
    flat = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2 and f"Invalid value for {option}: {words}" in flat, res.output
    assert not (tmp_path / "o").exists()
