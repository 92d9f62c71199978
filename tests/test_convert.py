"""`tristudio convert PKL OUT_DIR` through the real CLI app: converts a fixture snapshot, fails cleanly on bad input."""

from __future__ import annotations

import json

import pytest
import torch
from eg3d_pickle_fixtures import (
    Reduce,
    dumps,
    official_parts,
    ref,
    tiny_generator,
    write_generator_snapshot,
    write_snapshot,
)
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.eg3d.load import load_generator


@pytest.fixture(scope="module")
def G():
    return tiny_generator(seed=3)


@pytest.fixture(scope="module")
def pkl(tmp_path_factory, G):
    folder = tmp_path_factory.mktemp("convert")
    return write_generator_snapshot(folder / "network-snapshot-000400.pkl", G, sentinel=folder / "SENTINEL")


def test_convert_writes_a_loadable_model_folder(pkl, G, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["convert", str(pkl), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    n_params = sum(p.numel() for p in G.parameters())
    assert f"{n_params:,}" in text and "32 px output" in text and "neural rendering 16 px" in text
    assert "8 + 8 samples/ray" in text and "2.25 .. 3.3" in text
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "tristudio-eg3d" and meta["source"]["file"] == pkl.name
    G2 = load_generator(out)
    assert all(torch.equal(G2.state_dict()[k], v) for k, v in G.state_dict().items())
    assert not (pkl.parent / "SENTINEL").exists()
    # converting the same pickle again replaces its own folder
    assert CliRunner().invoke(app, ["convert", str(pkl), "--out", str(out)]).exit_code == 0
    # another model there (another pickle's, a trained one) or a user's files: refused, kept, unless --overwrite
    meta["source"]["sha256"] = "0" * 64
    (out / "model.json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(app, ["convert", str(pkl), "--out", str(out)])
    assert result.exit_code == 2 and "already holds a model: pass --overwrite" in " ".join(
        result.output.replace("│", " ").split()
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert CliRunner().invoke(app, ["convert", str(pkl), "--out", str(out), "--overwrite"]).exit_code == 0
    assert json.loads((out / "model.json").read_text())["source"]["sha256"] != "0" * 64
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["convert", str(pkl), "--out", str(mine)])
    assert result.exit_code == 2 and "holds other files (notes.txt)" in " ".join(
        result.output.replace("│", " ").split()
    )
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def _make_bad(kind, tmp_path, pkl, G):
    p = tmp_path / "bad.pkl"
    state, kwargs, nrr = official_parts(G)
    if kind == "missing file":
        return tmp_path / "nope.pkl"
    if kind == "not a pickle":
        p.write_text("definitely not a pickle")
    elif kind == "truncated":
        data = pkl.read_bytes()
        p.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "malicious":
        p.write_bytes(dumps(Reduce(ref("os.system"), (f"touch {tmp_path / 'SENTINEL'}",))))
    elif kind == "missing G_ema":
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr, drop=("G_ema",))
    elif kind == "wrong shapes":
        state["backbone.mapping.fc1.weight"] = torch.zeros(3, 3)
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "NaN weights":
        state["backbone.mapping.fc1.bias"][0] = float("nan")
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "a folder":
        p.mkdir()
    return p


BAD = {
    "missing file": "network pickle not found",
    "not a pickle": "is not a network pickle",
    "truncated": "truncated",
    "malicious": "global os.system is not on the allow-list",
    "missing G_ema": "no 'G_ema' network",
    "wrong shapes": "wrong shape: backbone.mapping.fc1.weight (3, 3)",
    "NaN weights": "holds NaN or Inf",
    "a folder": "is a folder, not a network pickle",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_convert_fails_with_one_red_line(kind, tmp_path, pkl, G):
    bad = _make_bad(kind, tmp_path, pkl, G)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["convert", str(bad), "--out", str(out)], color=True)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not a crash
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "\x1b[31m" in lines[0] and "error:" in lines[0] and BAD[kind] in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not (out / "model.json").exists()
    assert not (tmp_path / "SENTINEL").exists()


def test_convert_refuses_a_file_as_out_dir(tmp_path, pkl):
    target = tmp_path / "occupied"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["convert", str(pkl), "--out", str(target)])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "is a file, not a folder" in said  # as every --out (cli/errors.py)
    assert target.read_text() == "keep me"
