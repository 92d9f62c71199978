"""`tristudio dreamfusion`: bit-identical resume after SIGKILL, bad inputs (one line, exit 1), and a small SDS run with
the shipped small-world prior (skipped until it is shipped)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
from tristudio.core.io.assets import shipped_prior_path
from tristudio.core.io.run_checkpoints import latest_step, load_latest, save_step
from tristudio.core.priors import load_prior

TINY = ["--resolution", "16", "--render-every", "0", "--threads", "1"]
TINY_CFG = dict(resolution=16, grid_resolution=32, samples=24)


def _cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "tristudio.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )


def test_resume_after_sigkill_is_bit_identical(tiny_prior_dir, tmp_path):
    steps, out = 6, tmp_path / "run"
    args = [
        "dreamfusion",
        "a red cube",
        "--prior",
        str(tiny_prior_dir),
        "--steps",
        str(steps),
        "--out",
        str(out),
        "--ckpt-every",
        "2",
        *TINY,
    ]
    proc = _cli(*args)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (latest_step(out) or 0) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    killed_at = latest_step(out)
    assert proc.returncode == -signal.SIGKILL and killed_at < steps, proc.stdout.read().decode()
    resumed = _cli(*args, "--resume")
    log = resumed.communicate()[0].decode()
    assert resumed.returncode == 0, log
    assert f"resuming {out} at step {killed_at}" in log

    # the same run without interruption, in process
    ref = DreamFusion(
        DreamFusionConfig(prompt="a red cube", steps=steps, **TINY_CFG), load_prior(tiny_prior_dir, "cpu")
    )
    ref.run(steps)
    loaded = load_latest(out)
    got = loaded.tensors
    want, meta_ref = ref.state_tensors()
    assert loaded.meta["step"] == steps == meta_ref["step"]
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k].cpu()), k
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(steps))  # no duplicated steps after the resume
    assert (out / "loss.png").is_file()


def _run(args):
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    return result.exit_code, lines


def test_bad_inputs_give_one_clear_line(tiny_prior_dir, tmp_path, monkeypatch):
    code, lines = _run(["dreamfusion", "   ", "--prior", str(tiny_prior_dir), "--out", str(tmp_path / "a")])
    assert code == 1 and len(lines) == 1 and "empty prompt" in lines[0]

    code, lines = _run(["dreamfusion", "a cube", "--prior", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert code == 1 and len(lines) == 1 and "prior folder not found" in lines[0] and "nope" in lines[0]

    import tristudio.cli.commands.dreamfusion as cmd

    monkeypatch.setattr(cmd, "shipped_prior_path", lambda: tmp_path / "assets" / "prior_small")
    code, lines = _run(["dreamfusion", "a cube", "--out", str(tmp_path / "c")])
    assert code == 1 and len(lines) == 1 and "shipped small-world prior is missing" in lines[0]
    assert str(tmp_path / "assets" / "prior_small") in lines[0]

    code, lines = _run(["dreamfusion", "a cube", "--guidance", "xyz", "--prior", str(tiny_prior_dir)])
    assert code == 1 and len(lines) == 1 and "unknown --guidance" in lines[0]


def test_nan_field_is_refused(tiny_prior_dir, tmp_path):
    prior = load_prior(tiny_prior_dir, "cpu")
    df = DreamFusion(DreamFusionConfig(prompt="a cube", steps=2, **TINY_CFG), prior)
    with torch.no_grad():
        df.field.planes[0, 0, 0, 5, 5] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        df.step()
    # a run folder whose checkpoint holds NaN: one line, exit 1
    tensors, meta = df.state_tensors()
    save_step(tmp_path / "run", meta["step"], tensors, meta, check_finite=False)
    code, lines = _run(
        [
            "dreamfusion",
            "a cube",
            "--prior",
            str(tiny_prior_dir),
            "--out",
            str(tmp_path / "run"),
            "--resume",
            "--steps",
            "2",
            *TINY,
        ]
    )
    assert code == 1 and len(lines) == 1 and "NaN" in lines[0], lines
    # and a run folder holding a run is not overwritten without --resume
    code, lines = _run(["dreamfusion", "a cube", "--prior", str(tiny_prior_dir), "--out", str(tmp_path / "run")])
    assert code == 1 and len(lines) == 1 and "--resume" in lines[0]


@pytest.mark.skipif(
    not (shipped_prior_path() / "model_index.json").is_file(),
    reason="the small-world prior (core/assets/prior_small) is not shipped yet",
)
def test_small_sds_run_makes_a_red_roundish_object():
    from tristudio.core.dreamfusion.acceptance import circularity
    from tristudio.core.dreamfusion.export import render_orbit

    prior = load_prior(shipped_prior_path(), "cpu")
    df = DreamFusion(DreamFusionConfig(prompt="a red sphere", steps=150, resolution=32, seed=0), prior)
    df.run(150)
    out = render_orbit(df, 4, 32, shading="albedo")
    w = out["opacity"]  # (4, 1, R, R)
    mean_rgb = (out["image"] * w).sum(dim=(0, 2, 3)) / w.sum()
    r, g, b = mean_rgb.tolist()
    assert r > g + 0.15 and r > b + 0.15, mean_rgb
    assert min(circularity(m[0] > 0.5) for m in w) > 0.7


def test_a_prompt_that_names_a_view_gets_no_other_view_word(tiny_prior_dir):
    """'a red cube, back view' was trained as 'a red cube, back view, overhead view' (two views, one contradicting
    the other): a prompt that names a view is read as typed from every camera, with a warning saying so."""
    import math

    from tristudio.core.dreamfusion.prompts import fit_view_prompts, named_view
    from tristudio.core.worlds.captions import VIEW_WORDS

    prior = load_prior(tiny_prior_dir, "cpu")
    df = DreamFusion(DreamFusionConfig(prompt="a red cube, Back View", steps=1, **TINY_CFG), prior)
    yaw, pitch = torch.tensor([0.0, math.pi, 1.5, 0.0]), torch.tensor([0.0, 0.0, 0.0, 1.4])  # front, back, side, above
    assert df.prompts_for(yaw, pitch) == ["a red cube, Back View"] * 4
    assert df.prompt_note == (
        "warning: the prompt names a view ('back view'): no view word is added, every camera reads it as typed"
    )
    _, texts, note = fit_view_prompts("a red cube", list(VIEW_WORDS), prior)  # no view named: one per camera
    assert texts == {w: f"a red cube, {w}" for w in VIEW_WORDS} and note is None
    assert fit_view_prompts("a red cube, side view", [], prior)[2] is None  # (--no-view-dependent: nothing to say)
    assert named_view("a sideview of a cube") is None and named_view("an overhead view of a cube") == "overhead view"


def test_the_cut_prompt_warning_says_what_is_cut_and_why(tiny_prior_dir):
    """A prompt of exactly the 75 tokens the prior reads was 'the prompt is 75 tokens but the prior reads 75': it is
    the view words that do not fit. Nothing cut, no warning."""
    from tristudio.core.dreamfusion.prompts import fit_view_prompts
    from tristudio.core.worlds.captions import VIEW_WORDS

    prior = load_prior(tiny_prior_dir, "cpu")
    budget = prior.prompt_budget()
    exact = " ".join(["a"] * budget)  # one token per word for the tiny byte-level tokenizer
    assert len(prior.prompt_token_ids(exact)) == budget and not prior.truncated(exact)
    base, texts, note = fit_view_prompts(exact, list(VIEW_WORDS), prior)
    suffix = max(len(prior.prompt_token_ids(f"{exact}, {w}")) for w in VIEW_WORDS) - budget
    keep = len(prior.prompt_token_ids(base))
    assert note == (
        f"warning: the prior reads {budget} prompt tokens: the prompt's {budget} and up to {suffix} for ', <view "
        f"word>' do not fit, so it is cut to its first {keep} tokens and the view words stay"
    )
    assert keep == budget - suffix and all(texts[w] == f"{base}, {w}" for w in VIEW_WORDS)
    assert all(len(prior.prompt_token_ids(t)) <= budget for t in texts.values())
    assert fit_view_prompts(exact, [], prior) == (exact, {}, None)  # it fits as it is
    longer = f"{exact} a"
    assert fit_view_prompts(longer, [], prior)[2] == (
        f"warning: the prompt is {budget + 1} tokens but the prior reads {budget}; it is cut to its first {budget}"
    )
