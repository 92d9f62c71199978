"""The acceptance measures of core/dreamfusion/acceptance.py on shapes whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tristudio.core.dreamfusion.acceptance import chamfer, circularity, named_shape, nearest_primitive
from tristudio.core.mesh import extract_mesh
from tristudio.core.worlds.objects import object_scene


def test_circularity_of_a_disc_and_a_bar():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    disc = (xx - 31.5) ** 2 + (yy - 31.5) ** 2 < 20**2
    bar = (xx > 10) & (xx < 54) & (yy > 28) & (yy < 36)
    assert circularity(disc) > 0.9
    assert circularity(bar) < 0.5
    assert circularity(torch.zeros(8, 8, dtype=torch.bool)) == 0.0


def test_chamfer_is_zero_on_itself_and_grows_with_an_offset():
    pts = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    assert chamfer(pts, pts) == 0.0
    assert chamfer(pts, pts + np.float32([0.1, 0, 0])) == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize("word", ["sphere", "torus", "cone"])
def test_a_primitive_mesh_is_nearest_to_its_own_shape(word):
    scene = object_scene(word, "red", "matte")
    mesh = extract_mesh(lambda x: -scene(x.reshape(-1, 3)).reshape(*x.shape[:-1], 1), 0.0, bound=0.5, resolution=48)
    d = nearest_primitive(mesh, n=1000)
    assert min(d, key=d.get) == word, d
    assert d[word] < 0.06 and not math.isnan(d[word])  # the floor: 1000 samples of the surface (spacing ~0.035)


def test_named_shape_takes_the_longest_shape_word():
    # "cube" also ends "a green rounded cube": the acceptance once scored rounded cubes against the sharp cube
    assert named_shape("a green rounded cube") == "rounded cube"
    assert named_shape("a yellow cube") == "cube"
    assert named_shape("a pink capsule") == "capsule"
    with pytest.raises(ValueError, match="names none"):
        named_shape("a red teapot")


def test_stability_summary_and_verdict():
    from tristudio.core.dreamfusion.acceptance import stable_over_steps, summarise_marks

    def rec(hits, chamfer, nearest):
        return {"hits": hits, "chamfer": chamfer, "nearest": nearest}

    runs = [
        {
            "prompt": "a yellow cube",
            "marks": {"300": rec([1, 1, 0, 1], 0.08, "cube"), "1000": rec([1] * 4, 0.06, "cube")},
        },
        {
            "prompt": "a cyan torus",
            "marks": {"300": rec([0, 0, 1, 1], 0.10, "capsule"), "1000": rec([1, 0] * 2, None, None)},
        },
    ]
    s = summarise_marks(runs, [300, 1000])
    assert s["300"] == {"r_precision": 5 / 8, "chamfer_mean": pytest.approx(0.09), "named_nearest": 1, "prompts": 2}
    assert s["1000"]["r_precision"] == 6 / 8
    assert s["1000"]["chamfer_mean"] == pytest.approx((0.06 + 0.5) / 2)  # no mesh counts as the box's half side
    assert not stable_over_steps(s)  # the chamfer got worse
    assert stable_over_steps(s, chamfer_tol=0.2)
    s["1000"]["chamfer_mean"] = 0.05
    assert stable_over_steps(s)
    s["1000"]["r_precision"] = 0.5
    assert not stable_over_steps(s) and stable_over_steps(s, rp_tol=0.125)


def test_stability_marks_resume_only_what_they_can_measure(tmp_path, tiny_prior_dir):
    """evaluate_over_steps measures each mark at that step: a folder whose run is past a mark not yet measured, or
    made with other settings, is refused rather than measured on the wrong state; the marks done are kept."""
    import json

    from tristudio.core.dreamfusion.acceptance import evaluate_over_steps
    from tristudio.core.priors import load_clip, load_prior
    from tristudio.core.priors.testing import build_tiny_clip

    prior = load_prior(tiny_prior_dir, device="cpu")
    clip = load_clip(build_tiny_clip(tmp_path / "clip"), device="cpu")
    prompts, quiet = ["a red cube"], lambda line: None
    res = evaluate_over_steps(prior, clip, tmp_path, (1, 3), "sds", prompts, log=quiet, resolution=16)
    folder = tmp_path / "sds" / "a_red_cube"
    marks = json.loads((folder / "marks.json").read_text())
    assert sorted(marks) == ["1", "3"] and res["runs"][0]["marks"] == marks
    with pytest.raises(ValueError, match=r"at step 3, past the marks \[2\] not measured yet"):
        evaluate_over_steps(prior, clip, tmp_path, (2, 3), "sds", prompts, log=quiet, resolution=16)
    with pytest.raises(ValueError, match="measured with other settings"):
        evaluate_over_steps(prior, clip, tmp_path, (1, 3), "sds", prompts, seed=1, log=quiet, resolution=16)
    assert json.loads((folder / "marks.json").read_text()) == marks  # nothing measured again, nothing lost
    res = evaluate_over_steps(prior, clip, tmp_path, (3, 4), "sds", prompts, log=quiet, resolution=16)
    assert res["runs"][0]["marks"]["3"] == marks["3"] and "4" in res["runs"][0]["marks"]


def test_stability_cli_refuses_what_it_would_ignore(tmp_path):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    def run(*args):
        res = CliRunner().invoke(app, ["eval", "dreamfusion-acceptance", "--out", str(tmp_path / "o"), *args])
        return res.exit_code, " ".join(res.output.replace("│", " ").split())

    code, said = run("--marks", "1", "--first-object", "50")
    assert code == 2 and "--first-object" in said and "held-out prompts" in said
    code, said = run("--marks", "1,2", "--steps", "5")
    assert code == 2 and "--steps" in said and "the last mark" in said
    assert not (tmp_path / "o").exists()
