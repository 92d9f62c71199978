"""The training run: bit-identical resume after SIGKILL, NaN stop, dataset validation, run-folder artefacts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tristudio.core.data import write_dataset
from tristudio.core.eg3d import loss as L
from tristudio.core.eg3d import train as T
from tristudio.core.io.checkpoint import load_checkpoint

STEPS = 6
BATCH = 4


def _make_dataset(path: Path, n=8, res=32, seed=0) -> Path:
    from tristudio.core.worlds.camera_sampling import head_cameras

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, res, res, 3), dtype=torch.uint8, generator=g)
    return write_dataset(path, images, head_cameras(list(range(n))).label())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _make_dataset(tmp_path_factory.mktemp("data") / "heads")


def _cli(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tristudio.cli",
        "train",
        "eg3d",
        "--data",
        str(data),
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--kimg",
        str(STEPS * BATCH / 1000),
        "--batch",
        str(BATCH),
        "--ckpt-every",
        "1",
        "--sample-every",
        "0",
        "--threads",
        "1",
        "--seed",
        "5",
        "--density-reg-interval",
        "2",
        "--r1-interval",
        "2",
        *extra,
    ]


def _config(data: Path, out: Path) -> T.TrainConfig:
    loss = {
        "r1_gamma": 1.0,
        "r1_interval": 2,
        "density_reg": 0.25,
        "density_reg_interval": 2,
        "gpc_reg_prob": 0.5,
        "blur_fade_kimg": 200.0,
    }
    return T.TrainConfig(
        data=str(data),
        out=str(out),
        preset="tiny",
        kimg=STEPS * BATCH / 1000,
        batch=BATCH,
        seed=5,
        snap=1,
        sample_every=0,
        threads=1,
        device="cpu",
        loss=loss,
    )


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(dataset, tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(dataset, killed), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 600  # generous: a loaded CI machine
    while T.latest_checkpoint(killed) is None:
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stdout.read().decode()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = T.latest_checkpoint(killed)
    assert at_kill is not None and int(at_kill.name[5:]) < STEPS  # really interrupted before the end

    resumed = subprocess.run(_cli(dataset, killed, "--resume"), env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stdout

    straight = tmp_path / "straight"
    T.train(_config(dataset, straight))

    a, meta_a = load_checkpoint(T.latest_checkpoint(killed), name="model")
    b, meta_b = load_checkpoint(T.latest_checkpoint(straight), name="model")
    assert meta_a["step"] == meta_b["step"] == STEPS
    assert set(a) == set(b)
    assert any(k.startswith("opt_D.") for k in a) and any(k.startswith("G_ema.") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"
    # and the model folder holds the same G_ema
    m, _ = load_checkpoint(killed / "model", name="model")
    assert all(torch.equal(m[k], b[f"G_ema.{k}"]) for k in m)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    real = L.discriminator_loss

    def poisoned(G, D, step):
        loss, logits = real(G, D, step)
        if poisoned.calls == 2:  # the third step (index 2)
            loss = loss * float("nan")
        poisoned.calls += 1
        return loss, logits

    poisoned.calls = 0
    monkeypatch.setattr(L, "discriminator_loss", poisoned)
    out = tmp_path / "nan"
    cfg = _config(dataset, out)
    cfg.loss = {**cfg.loss, "density_reg_points": 32}
    with pytest.raises(T.NaNLossError, match=r"loss D is nan at step 2"):
        T.train(cfg)
    last = T.latest_checkpoint(out)
    assert last is not None and last.name == "step-00000002"
    tensors, meta = load_checkpoint(last, name="model")  # finite (load_checkpoint checks)
    assert meta["step"] == 2


def test_bad_datasets_stop_before_training(tmp_path):
    from tristudio.core.worlds.camera_sampling import head_cameras

    labels = head_cameras([0, 1, 2, 3]).label()
    # wrong labels: 16 floats
    bad_labels = _make_dataset(tmp_path / "labels")
    doc = json.loads((bad_labels / "dataset.json").read_text())
    doc["labels"][1][1] = doc["labels"][1][1][:16]
    (bad_labels / "dataset.json").write_text(json.dumps(doc))
    # mixed resolutions
    imgs = [torch.zeros(32, 32, 3, dtype=torch.uint8)] * 3 + [torch.zeros(16, 16, 3, dtype=torch.uint8)]
    mixed = write_dataset(tmp_path / "mixed", [i.numpy() for i in imgs], labels)
    # unreadable image
    broken = write_dataset(tmp_path / "broken", [torch.zeros(32, 32, 3, dtype=torch.uint8).numpy()] * 4, labels)
    name = json.loads((broken / "dataset.json").read_text())["labels"][2][0]
    (broken / name).write_bytes(b"not a png")
    cases = {
        bad_labels: "25",
        mixed: "mixed image sizes",
        broken: "unreadable image",
        tmp_path / "nowhere": "no such dataset",
    }
    for path, needle in cases.items():
        out = tmp_path / f"run-{path.name}"
        with pytest.raises(T.TrainingError, match="cannot be used") as err:
            T.train(_config(path, out))
        assert needle in str(err.value), str(err.value)
        assert not (out / "checkpoints").exists()
    # a dataset at another size than the preset
    big = _make_dataset(tmp_path / "big", n=4, res=64)
    with pytest.raises(T.TrainingError, match="64 px"):
        T.train(_config(big, tmp_path / "run-big"))


def test_cli_reports_a_bad_dataset_in_one_clear_line(tmp_path):
    r = subprocess.run(
        _cli(tmp_path / "missing", tmp_path / "out"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 1
    assert "error:" in r.stderr and "no such dataset" in r.stderr and "error" not in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_loss_plot_and_sample_grid(tmp_path):
    from PIL import Image

    from tristudio.core.eg3d.generator import TriPlaneGenerator
    from tristudio.core.eg3d.presets import preset

    recs = [{"step": i, "loss_G": 1.0 / (i + 1), "loss_D": 0.5 + 0.1 * i} for i in range(20)]
    from tristudio.core.io.plots import plot_losses

    path = plot_losses(recs, tmp_path / "losses.png")
    img = Image.open(path)
    assert img.size == (640, 400)  # two panels (keys present)
    assert len(img.getcolors(maxcolors=1 << 20)) > 2  # something was drawn
    torch.manual_seed(0)
    G = TriPlaneGenerator(**preset("tiny"))
    rng = torch.get_rng_state()
    grid = T.sample_grid(G, [0, 1], [-0.5, 0.0, 0.5])
    assert grid.shape == (64, 96, 3) and grid.dtype.name == "uint8"
    assert torch.equal(torch.get_rng_state(), rng)  # sampling does not disturb the training RNG
    assert (T.sample_grid(G, [0, 1], [-0.5, 0.0, 0.5]) == grid).all()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--neural-res-fade-kimg", "-1", "-1.0 is below the minimum 0"),  # jumped straight to the final resolution
        ("--neural-res-fade-start-kimg", "nan", "nan is not a finite number"),  # failed late, converting NaN to int
        ("--depth-samples", "100000", "100000 is above the maximum 1024"),  # a 26 GB allocation
        ("--importance-samples", "1025", "1025 is above the maximum 1024"),
    ],
)
def test_cli_refuses_bad_neural_resolution_fades_and_ray_samples_naming_them(option, value, words, tmp_path):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    args = _cli(tmp_path / "data", tmp_path / "out", "--neural-res-final", "32", option, value)[3:]
    result = CliRunner().invoke(app, args)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and f"Invalid value for {option}: {words}" in flat, result.output
    assert not (tmp_path / "out").exists()


def test_resume_with_a_length_the_run_has_passed_takes_no_step(dataset, tmp_path):
    """It said 'for 1 steps' and its bar showed 2/1: like dreamfusion, it says where the run is and trains nothing."""
    from typer.testing import CliRunner

    from tristudio.cli.app import app
    from tristudio.core.io.run_checkpoints import checkpoint_steps

    out = tmp_path / "run"
    first = CliRunner().invoke(app, _cli(dataset, out, "--kimg", str(2 * BATCH / 1000))[3:])  # the later --kimg wins
    assert first.exit_code == 0 and checkpoint_steps(out) == [1, 2], first.output
    log = (out / "log.jsonl").read_text()
    again = CliRunner().invoke(app, ["train", "eg3d", "--out", str(out), "--resume", "--kimg", str(BATCH / 1000)])
    said = " ".join(again.output.split())
    assert again.exit_code == 0 and "is at step 2 of 1: no step to take" in said, again.output
    assert "for 1 steps" not in said and checkpoint_steps(out) == [1, 2] and (out / "log.jsonl").read_text() == log
