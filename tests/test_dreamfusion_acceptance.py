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
