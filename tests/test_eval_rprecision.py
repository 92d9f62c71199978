"""`tristudio eval rprecision`: the CLI's score equals a direct R-Precision computation; bad folders fail clearly."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.priors import load_clip
from tristudio.core.priors.rprecision import clip_r_precision
from tristudio.core.priors.testing import build_tiny_clip


@pytest.fixture(scope="module")
def render_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("rp")
    clip_dir = build_tiny_clip(root / "clip")
    renders = root / "renders"
    renders.mkdir()
    prompts = ["a red cube", "a blue sphere", "a green torus"]
    rng = np.random.default_rng(0)
    captions = {}
    for i in range(9):
        name = f"r{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(renders / name)
        captions[name] = {"caption": prompts[i % 3]}
    (renders / "captions.json").write_text(json.dumps(captions))
    (root / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return clip_dir, renders, root / "prompts.txt", prompts, captions


def test_cli_score_equals_direct_computation(render_set):
    clip_dir, renders, prompts_file, prompts, captions = render_set
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "rprecision",
            "--clip",
            str(clip_dir),
            "--renders",
            str(renders),
            "--prompts",
            str(prompts_file),
            "--k",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    score = float(re.search(r"R-Precision@2: ([0-9.]+)", res.output).group(1))
    clip = load_clip(clip_dir, device="cpu")
    names = sorted(captions)
    images = torch.stack(
        [
            torch.from_numpy(np.asarray(Image.open(renders / n).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
            for n in names
        ]
    )
    index = [prompts.index(captions[n]["caption"]) for n in names]
    assert score == pytest.approx(clip_r_precision(clip, images, index, prompts, k=2), abs=1e-3)


def test_unknown_prompt_and_missing_captions_are_one_clear_line(render_set, tmp_path):
    clip_dir, renders, prompts_file, _, _ = render_set
    short = tmp_path / "short.txt"
    short.write_text("a red cube\na blue sphere\n")
    res = CliRunner().invoke(
        app, ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(renders), "--prompts", str(short)]
    )
    assert res.exit_code == 1 and "a green torus" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        app, ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(tmp_path), "--prompts", str(prompts_file)]
    )
    assert res.exit_code == 1 and "captions.json" in res.output
