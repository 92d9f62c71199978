"""One checkpoint = one atomic unit, for every trainer (issue 15).

The shared helper (core/io/run_checkpoints.py) is tested directly: a step folder appears whole or not at all, the
`latest` pointer is the commit, orphans of a killed save are removed, a corrupt newest checkpoint falls back to the
previous one, old ones are pruned. Then each trainer (fit, DreamFusion, train clip, train prior, train eg3d) is
"killed" inside the save window by an injected failure (before the step folder's rename, and between that rename and
the pointer write) and resumed: the resumed run must end bit-identical (torch.equal on every tensor) to an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from tristudio.core.io import run_checkpoints as RC
from tristudio.core.io.atomic import atomic_write_text
from tristudio.core.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no trainer code catches it."""


def _tensors(step: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return {"w": torch.randn(4, 3, generator=g), "b": torch.arange(step, step + 5)}


# ------------------------------------------------------------------------------------------- the shared helper


def test_save_then_load_latest_roundtrips_and_keeps_only_the_newest(tmp_path):
    for step in (10, 20, 30, 40):
        RC.save_step(tmp_path, step, _tensors(step), {"note": f"s{step}"}, keep=2)
    assert RC.checkpoint_steps(tmp_path) == [30, 40]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-00000040"
    loaded = RC.load_latest(tmp_path)
    assert loaded.step == 40 and loaded.meta["note"] == "s40" and loaded.meta["step"] == 40
    assert all(torch.equal(loaded.tensors[k], v) for k, v in _tensors(40).items())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-00000030", "step-00000040"]


def test_a_kill_before_the_folder_rename_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    RC.save_step(tmp_path, 1, _tensors(1), {})

    def killed(tmp, target):  # a real kill leaves the temporary folder behind: keep a copy as the orphan
        shutil.copytree(tmp, Path(tmp).with_name(Path(tmp).name + "-orphan"))
        raise Killed

    monkeypatch.setattr(RC, "replace_path", killed)
    with pytest.raises(Killed):
        RC.save_step(tmp_path, 2, _tensors(2), {})
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    assert any(p.name.startswith(".step-00000002") for p in root.iterdir())  # the orphan a kill leaves
    loaded = RC.load_latest(tmp_path)
    assert loaded.step == 1 and torch.equal(loaded.tensors["w"], _tensors(1)["w"])
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000001"]  # orphan cleaned


def test_temporaries_of_atomic_writes_cut_by_a_kill_are_removed_on_resume(tmp_path):
    from tristudio.core.io.atomic import atomic_path

    RC.save_step(tmp_path, 1, _tensors(1), {})
    with pytest.raises(Killed), atomic_path(tmp_path / "config.json") as tmp:
        orphan = Path(tmp).with_name(Path(tmp).name.replace(".tmp", "x.tmp"))
        shutil.copy(tmp, orphan)  # what a kill would leave (the context manager removes its own on an exception)
        raise Killed
    (tmp_path / ".export.abc.tmp").mkdir()
    (tmp_path / ".lock").write_text("1")
    (tmp_path / ".hidden_user_file").write_text("mine")
    assert RC.load_latest(tmp_path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden_user_file", ".lock", "checkpoints"]


def test_a_kill_between_the_rename_and_the_pointer_is_rolled_back(tmp_path, monkeypatch):
    RC.save_step(tmp_path, 1, _tensors(1), {})

    def killed(*a, **k):
        raise Killed

    monkeypatch.setattr(RC, "atomic_write_text", killed)
    with pytest.raises(Killed):
        RC.save_step(tmp_path, 2, _tensors(2), {})
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "step-00000002" / "model.json").is_file()  # renamed, never committed
    warnings = []
    loaded = RC.load_latest(tmp_path, warn=warnings.append)
    assert loaded.step == 1
    assert not (tmp_path / "checkpoints" / "step-00000002").exists()
    assert len(warnings) == 1 and "never committed" in warnings[0]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_json", "bad_json"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, damage):
    RC.save_step(tmp_path, 1, _tensors(1), {})
    newest = RC.save_step(tmp_path, 2, _tensors(2), {})
    tensors = newest / "model.safetensors"
    if damage == "truncate":
        tensors.write_bytes(tensors.read_bytes()[:-7])
    elif damage == "flip":  # same length, one byte of data changed: only the hash can tell
        data = bytearray(tensors.read_bytes())
        data[-3] ^= 0xFF
        tensors.write_bytes(bytes(data))
    elif damage == "delete_json":
        (newest / "model.json").unlink()
    else:
        (newest / "model.json").write_text("{not json")
    warnings = []
    loaded = RC.load_latest(tmp_path, warn=warnings.append)
    assert loaded.step == 1 and torch.equal(loaded.tensors["w"], _tensors(1)["w"])
    assert len(warnings) == 1 and "falling back to step-00000001" in warnings[0] and "step-00000002" in warnings[0]


def test_every_checkpoint_corrupt_is_one_clear_error(tmp_path):
    folder = RC.save_step(tmp_path, 3, _tensors(3), {})
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="step-00000003"):
        RC.load_latest(tmp_path, warn=None)
    assert RC.load_latest(tmp_path / "empty") is None


def test_model_folder_caught_between_its_two_renames_is_reported_not_loaded(tmp_path):
    """The old defect: new weights renamed beside the old model.json loaded silently. The JSON's hash catches it."""
    save_checkpoint(tmp_path, _tensors(1), {"step": 1})
    old_json = (tmp_path / "model.json").read_text()
    save_checkpoint(tmp_path, _tensors(2), {"step": 2})
    (tmp_path / "model.json").write_text(old_json)  # = killed after the tensors' rename, before the JSON's
    with pytest.raises(CheckpointError, match="does not match the hash"):
        load_checkpoint(tmp_path)


ASSETS = Path(__file__).resolve().parent.parent / "core" / "assets"
SHIPPED_MODELS = sorted(p.parent.name for p in ASSETS.glob("*/model.json"))


def test_the_shipped_models_are_found():
    assert {"eg3d_heads", "sw_features", "id_sw_heads", "id_sw_heads2"} <= set(SHIPPED_MODELS)


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_every_shipped_model_carries_its_weights_hash_and_a_damaged_copy_is_refused(name, tmp_path):
    """The README's promise (the hash is checked on load) holds for the shipped folders too: their model.json carries
    the field the saver writes, it matches the weights, and 4000 overwritten bytes mid-file are refused."""
    from tristudio.core.io.checkpoint import HASH_KEY, file_sha256

    meta = json.loads((ASSETS / name / "model.json").read_text())
    assert meta.get(HASH_KEY) == file_sha256(ASSETS / name / "model.safetensors")
    copy = tmp_path / name
    shutil.copytree(ASSETS / name, copy)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size // 2)
        f.write(bytes(range(250)) * 16)  # 4000 bytes
    with pytest.raises(CheckpointError, match="does not match the hash") as info:
        load_checkpoint(copy)
    assert str(weights) in str(info.value)


def test_generate_refuses_a_damaged_copy_of_the_shipped_model(tmp_path):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    copy = tmp_path / "eg3d_heads"
    shutil.copytree(ASSETS / "eg3d_heads", copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(2_000_000)
        f.write(bytes(4000))
    result = CliRunner().invoke(app, ["generate", "--model", str(copy), "--seeds", "0", "--out", str(tmp_path / "g")])
    flat = " ".join(result.output.split())
    assert result.exit_code == 1 and "model.safetensors does not match the hash" in flat, result.output
    assert not (tmp_path / "g").exists()


def test_disk_full_is_a_checkpoint_error_and_keeps_the_previous(tmp_path, monkeypatch):
    import tristudio.core.io.checkpoint as C

    RC.save_step(tmp_path, 1, _tensors(1), {})

    def full(tensors, path):
        from safetensors import SafetensorError

        Path(path).write_bytes(b"\0" * 8)
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(C, "save_file", full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        RC.save_step(tmp_path, 2, _tensors(2), {})
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []
    assert RC.load_latest(tmp_path).step == 1


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        folder = RC.save_step(tmp_path, 1, _tensors(1), {})
        atomic_write_text(tmp_path / "note.txt", "x")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(folder) == 0o750  # mkdtemp alone would give 0700
    assert mode(folder / "model.safetensors") == 0o640  # mkstemp alone would give 0600
    assert mode(tmp_path / "note.txt") == 0o640


# ------------------------------------------------------------------------------ every trainer, killed and resumed


def _kill_on(monkeypatch, save_number: int, where: str):
    """Fail the `save_number`-th checkpoint save at `where`: 'rename' (before the step folder appears) or 'commit'
    (after it appears, before `latest` names it)."""
    calls = {"n": 0}
    real_replace, real_write = RC.replace_path, RC.atomic_write_text

    def replace(tmp, target):
        calls["n"] += 1
        if where == "rename" and calls["n"] == save_number:
            raise Killed
        return real_replace(tmp, target)

    def write(path, text):
        if where == "commit" and calls["n"] == save_number:
            raise Killed
        return real_write(path, text)

    monkeypatch.setattr(RC, "replace_path", replace)
    monkeypatch.setattr(RC, "atomic_write_text", write)


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:4]}"


WHERE = ["rename", "commit"]


@pytest.mark.parametrize("where", WHERE)
def test_fit_resumes_bit_identical_after_a_kill_in_the_save(tmp_path, monkeypatch, where):
    from test_representations import sphere_views, tiny_fit_config

    from tristudio.core.fitting.loop import fit

    views = sphere_views(4, 12)
    config = tiny_fit_config("grid", steps=6)
    kw = dict(log_every=1, ckpt_every=2, echo=lambda s: None)
    fit(config, views, views, tmp_path / "straight", **kw)
    _kill_on(monkeypatch, 2, where)
    with pytest.raises(Killed):
        fit(config, views, views, tmp_path / "killed", **kw)
    monkeypatch.undo()
    assert RC.latest_step(tmp_path / "killed") == 2
    fit(config, views, views, tmp_path / "killed", resume=True, **kw)
    a, b = RC.load_latest(tmp_path / "straight"), RC.load_latest(tmp_path / "killed")
    assert a.step == b.step == 6
    _assert_same(a.tensors, b.tensors)
    log = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r and "eval" not in r] == [1, 2, 3, 4, 5, 6]  # no duplicates


@pytest.mark.parametrize("where", WHERE)
def test_dreamfusion_resumes_bit_identical_after_a_kill_in_the_save(tiny_prior_dir, tmp_path, monkeypatch, where):
    from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
    from tristudio.core.priors import load_prior

    prior = load_prior(tiny_prior_dir, "cpu")
    cfg = dict(prompt="a red cube", steps=6, resolution=16, grid_resolution=32, samples=24)
    straight = DreamFusion(DreamFusionConfig(**cfg), prior)
    straight.run(6, out_dir=tmp_path / "straight", checkpoint_every=2)
    _kill_on(monkeypatch, 2, where)
    with pytest.raises(Killed):
        DreamFusion(DreamFusionConfig(**cfg), prior).run(6, out_dir=tmp_path / "killed", checkpoint_every=2)
    monkeypatch.undo()
    assert RC.latest_step(tmp_path / "killed") == 2
    resumed = DreamFusion.load(tmp_path / "killed", prior, warn=lambda s: None)
    assert resumed.step_count == 2
    resumed.run(6, out_dir=tmp_path / "killed", checkpoint_every=2)
    a, b = RC.load_latest(tmp_path / "straight"), RC.load_latest(tmp_path / "killed")
    assert a.step == b.step == 6
    _assert_same(a.tensors, b.tensors)


@pytest.fixture(scope="module")
def render_set(tmp_path_factory):
    from tristudio.core.priors.renders import render_objects

    folder = tmp_path_factory.mktemp("renders") / "set"
    render_objects(range(16), resolution=16).save(folder)
    return folder


CLIP_CFG = dict(
    image_size=16, patch_size=8, vision_width=16, vision_layers=1, text_width=16, text_layers=1, heads=2,
    projection_dim=8, batch_size=8, warmup=1, steps=6, p_view=0.0, p_material=0.0,
)  # fmt: skip


def _run_clip(work, render_set, resume=False):
    from tristudio.core.priors.train_clip import ClipConfig, run_clip_training

    return run_clip_training(
        work, ClipConfig(**CLIP_CFG), [str(render_set)], None, None, resume, None, ckpt_every=2, eval_every=0
    )


@pytest.mark.parametrize("where", WHERE)
def test_train_clip_resumes_bit_identical_after_a_kill_in_the_save(tmp_path, monkeypatch, render_set, where):
    _run_clip(tmp_path / "straight", render_set)
    _kill_on(monkeypatch, 2, where)
    with pytest.raises(Killed):
        _run_clip(tmp_path / "killed", render_set)
    monkeypatch.undo()
    assert RC.latest_step(tmp_path / "killed") == 2
    _run_clip(tmp_path / "killed", render_set, resume=True)
    a, b = RC.load_latest(tmp_path / "straight"), RC.load_latest(tmp_path / "killed")
    assert a.step == b.step == 6
    _assert_same(a.tensors, b.tensors)


@pytest.mark.parametrize("where", WHERE)
def test_train_prior_resumes_bit_identical_after_a_kill_in_the_save(tmp_path, monkeypatch, render_set, where):
    from tristudio.core.priors.train_prior import PriorConfig, run_prior_training

    _run_clip(tmp_path / "clip", render_set)
    cfg = dict(resolution=16, block_out_channels=(16, 32), attention_heads=2, batch_size=4, warmup=1, steps=6)

    def run(work, resume=False):
        return run_prior_training(
            work, PriorConfig(**cfg, holdout_pairs=[]), str(tmp_path / "clip" / "export"), [str(render_set)],
            resume, None, ckpt_every=2, sample_every=0, grid_steps=2,
        )  # fmt: skip

    run(tmp_path / "straight")
    _kill_on(monkeypatch, 2, where)
    with pytest.raises(Killed):
        run(tmp_path / "killed")
    monkeypatch.undo()
    assert RC.latest_step(tmp_path / "killed") == 2
    run(tmp_path / "killed", resume=True)
    a, b = RC.load_latest(tmp_path / "straight"), RC.load_latest(tmp_path / "killed")
    assert a.step == b.step == 6
    _assert_same(a.tensors, b.tensors)
    if where == WHERE[0]:  # killed after the last checkpoint, while sampling the last grid: resuming finishes it
        import tristudio.core.priors.ddim as ddim

        late = tmp_path / "late"
        monkeypatch.setattr(ddim, "sample_images", lambda *a, **k: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            run(late)
        monkeypatch.undo()
        assert RC.latest_step(late) == 6 and not (late / "samples" / "grid_000006.png").exists()
        run(late, resume=True)
        assert (late / "samples" / "grid_000006.png").is_file()


@pytest.mark.parametrize("where", WHERE)
def test_train_eg3d_resumes_bit_identical_after_a_kill_in_the_save(tmp_path, monkeypatch, where):
    from test_train_run import _config, _make_dataset

    from tristudio.core.eg3d import train as T

    data = _make_dataset(tmp_path / "data", n=4)
    steps = 3

    def config(out):
        cfg = _config(data, out)
        cfg.kimg = steps * cfg.batch / 1000
        return cfg

    T.train(config(tmp_path / "straight"))
    _kill_on(monkeypatch, 2, where)
    with pytest.raises(Killed):
        T.train(config(tmp_path / "killed"))
    monkeypatch.undo()
    assert RC.latest_step(tmp_path / "killed") == 1
    T.train(config(tmp_path / "killed"), resume=True)
    a, b = RC.load_latest(tmp_path / "straight"), RC.load_latest(tmp_path / "killed")
    assert a.step == b.step == steps
    _assert_same(a.tensors, b.tensors)


def test_replacing_a_folder_never_leaves_it_missing(tmp_path, monkeypatch):
    """An export folder (model/, export/) is swapped atomically: there is no moment without it (Linux)."""
    import sys

    from tristudio.core.io import atomic

    if sys.platform != "linux":
        pytest.skip("renameat2 is Linux-only; elsewhere the folder is renamed aside first")
    target = tmp_path / "export"
    target.mkdir()
    (target / "v").write_text("1")
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (_ for _ in ()).throw(AssertionError("not atomic")))
    with atomic.atomic_path(target, is_dir=True) as tmp:
        (Path(tmp) / "v").write_text("2")
    assert (target / "v").read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["export"]


def test_save_checkpoint_with_unstorable_metadata_leaves_the_previous_checkpoint(tmp_path):
    """A metadata value JSON cannot hold fails before anything is written: the folder's checkpoint still loads."""
    save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 1})
    with pytest.raises(TypeError, match="not JSON serialisable"):
        save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 2, "bad": object()})
    tensors, meta = load_checkpoint(tmp_path)
    assert meta["step"] == 1 and torch.equal(tensors["w"], torch.ones(3))


def test_without_a_latest_pointer_the_newest_whole_step_is_committed_again(tmp_path):
    """A kill between the first rename and its commit, or a lost `latest`: every step folder is whole (renamed into
    place only once written), so the newest is committed again with a warning; none is removed, and a new run does
    not replace the run (it holds trained state)."""
    from tristudio.core.io.training_run import TrainingRun

    for step in (2, 4, 6):
        RC.save_step(tmp_path, step, _tensors(step), {})
    (tmp_path / "checkpoints" / "latest").unlink()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "command.json").write_text('{"command": "fit", "options": {}}')
    with pytest.raises(FileExistsError, match="already holds a run"):
        TrainingRun(tmp_path, warn=None).check_start(resume=False)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert RC.load_latest(tmp_path, read_only=True).step == 6  # a reader (the viewer) sees it too, changing nothing
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    warnings = []
    loaded = RC.load_latest(tmp_path, warn=warnings.append)
    assert loaded.step == 6 and torch.equal(loaded.tensors["w"], _tensors(6)["w"])
    assert len(warnings) == 1 and "latest is missing" in warnings[0] and "step-00000006" in warnings[0]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest", "step-00000002", "step-00000004", "step-00000006",
    ]  # fmt: skip
    (tmp_path / "checkpoints" / "latest").write_text("../../../etc\n")  # damaged, not missing: said so
    warnings.clear()
    assert RC.load_latest(tmp_path, warn=warnings.append).step == 6
    assert len(warnings) == 1 and "latest names no step folder (damaged)" in warnings[0]
