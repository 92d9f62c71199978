"""Nothing lost, nothing silent (issue 15): every bad input of the hostile-user review gives one clear error (a
typer.BadParameter naming the option, or an 'error: ...' line, exit code != 0, no traceback); outputs never destroy a
user's files; user strings print verbatim through rich; run folders are locked; silent wrong results are refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nan_prior import nan_prior
from typer.testing import CliRunner

from tristudio.cli.app import app


def run(*args: str):
    """(exit code, output) of one in-process CLI call; a Python exception escaping the command fails the test."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback instead of a clear error: {result.exception!r}\n{result.output}")
    return result.exit_code, result.output


def clear_error(code: int, output: str, *needles: str) -> None:
    """One clear error: exit code != 0, no traceback, an error line that names the problem (a needle may be wrapped
    across the lines of typer's error box: a long path is compared without whitespace)."""
    assert code != 0, output
    assert "Traceback" not in output, output
    flat = " ".join(output.replace("│", " ").split())
    assert "error" in flat.lower() or "Invalid value" in flat, output
    for needle in needles:
        assert needle in flat or "".join(needle.split()) in "".join(flat.split()), (needle, output)


@pytest.fixture(scope="module")
def render_set(tmp_path_factory):
    from tristudio.core.priors.renders import render_objects

    folder = tmp_path_factory.mktemp("renders") / "set"
    render_objects(range(8), resolution=16).save(folder)
    return folder


# ------------------------------------------------------------------------------------- dataset make output safety


def test_dataset_make_never_deletes_a_users_folder(tmp_path):
    make = ["dataset", "make", "--world", "objects", "--resolution", "8", "--count"]
    out = tmp_path / "thesis"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.txt").write_text("three years of work")
    (out / "sub" / "data.csv").write_text("1,2,3")
    clear_error(*run(*make, "2", "--out", out), "thesis.txt", "--overwrite")
    assert (out / "thesis.txt").read_text() == "three years of work" and (out / "sub" / "data.csv").is_file()
    # a file (not .zip) as --out, and a zip that is not a dataset: refused, named, untouched
    paper = tmp_path / "paper.pdf"
    paper.write_bytes(b"%PDF")
    clear_error(*run(*make, "1", "--out", paper), "paper.pdf", "--overwrite")
    assert paper.read_bytes() == b"%PDF"
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    clear_error(*run(*make, "1", "--out", fake), "fake.zip", "not a zip dataset")
    assert fake.read_bytes() == b"not a zip"


def test_dataset_make_replaces_its_own_dataset_and_overwrite_is_explicit(tmp_path):
    import json

    out = tmp_path / "ds"
    args = ["dataset", "make", "--world", "objects", "--resolution", "8", "--out", out]
    assert run(*args, "--count", "2")[0] == 0
    code, output = run(*args, "--count", "3")  # a tristudio dataset: remade in place
    assert code == 0, output
    assert len(json.loads((out / "dataset.json").read_text())["labels"]) == 3
    (out / "notes.txt").write_text("mine")
    clear_error(*run(*args, "--count", "1"), "notes.txt", "--overwrite")  # names the file it would lose
    assert (out / "notes.txt").is_file()
    code, output = run(*args, "--count", "1", "--overwrite")
    assert code == 0 and not (out / "notes.txt").exists(), output


# ---------------------------------------------------------------------------------------------- rich markup


def test_square_brackets_in_paths_and_prompts_print_verbatim(tmp_path, tiny_prior_dir):
    out = tmp_path / "a[/]b[bold]c"
    code, output = run("generate", "--seeds", "0", "--out", out)
    assert code == 0, output
    assert str(out) in " ".join(output.split()) and (out / "seed0000.png").is_file()
    # an error message holding a user path with markup: printed as typed, no MarkupError
    missing = tmp_path / "[/]nope[bold]"
    code, output = run("generate", "--model", missing, "--out", tmp_path / "g")
    clear_error(code, output, "[/]nope[bold]")
    code, output = run(
        "dreamfusion", "a [bold]red[/] cube", "--prior", tiny_prior_dir, "--out", tmp_path / "df[/]", "--steps", "1",
        "--resolution", "16", "--render-every", "0", "--threads", "1",
    )  # fmt: skip
    assert code == 0, output
    assert "a [bold]red[/] cube" in output and str(tmp_path / "df[/]") in " ".join(output.split())


def test_escape_helper_round_trips_through_rich():
    from rich.console import Console

    from tristudio.cli.errors import esc

    console = Console(record=True, width=200)
    text = "path [/] and [bold]x[/bold] \\[y]"
    console.print(f"got {esc(text)}")
    assert console.export_text().strip() == f"got {text}"


# ---------------------------------------------------------------------------- tracebacks -> one clear line


BAD_INPUTS = {
    "generate --fov 0": (["generate", "--fov", "0"], "--fov"),
    "generate --resolution -3": (["generate", "--resolution", "-3"], "--resolution"),
    "sample -n 0": (["sample", "a cube", "-n", "0"], "--num"),
    "sample --steps 0": (["sample", "a cube", "--steps", "0"], "--steps"),
    "train eg3d --batch 0": (["train", "eg3d", "--data", "d", "--out", "o", "--batch", "0"], "--batch"),
    "train eg3d --kimg -1": (["train", "eg3d", "--data", "d", "--out", "o", "--kimg", "-1"], "--kimg"),
    "train clip without --data": (["train", "clip", "--out", "{tmp}/w"], "--data"),
    "train prior without --clip": (["train", "prior", "--out", "{tmp}/w", "--data", "{renders}"], "--clip"),
    "train clip --data missing": (["train", "clip", "--out", "{tmp}/w", "--data", "{tmp}/missing"], "--data"),
    "train prior --data wrong": (
        ["train", "prior", "--out", "{tmp}/w", "--data", "{tmp}", "--clip", "{tmp}"],
        "renders.json",
    ),
    "train prior --channels abc": (
        ["train", "prior", "--out", "{tmp}/w", "--data", "{renders}", "--clip", "{tmp}", "--channels", "abc"],
        "--channels",
    ),
    "train clip --resume of nothing": (["train", "clip", "--out", "{tmp}/w", "--resume"], "no run to resume"),
    "fit --steps 0": (["fit", "object:0", "--out", "{tmp}/f", "--steps", "0"], "--steps"),
    "train features --data missing": (
        ["train", "features", "--out", "{tmp}/feat", "--data", "{tmp}/missing"],
        "missing",
    ),
    "dreamfusion --lr nan": (["dreamfusion", "a cube", "--out", "{tmp}/d", "--lr", "nan"], "--lr"),
    "eval consistency --num 0": (["eval", "consistency", "--model", "{tmp}/m", "--num", "0"], "--num"),
    "eval consistency --resolution 2": (
        ["eval", "consistency", "--model", "{tmp}/m", "--resolution", "2"],
        "--resolution",
    ),
    "eval floaters --threshold nan": (["eval", "floaters", "--model", "{tmp}/m", "--threshold", "nan"], "--threshold"),
    "eval fid --num 1": (["eval", "fid", "--model", "{tmp}/m", "--data", "{tmp}", "--num", "1"], "--num"),
    "eval id-sw-train --steps 0": (["eval", "id-sw-train", "--out", "{tmp}/id", "--steps", "0"], "--steps"),
    "eval prior-acceptance, no prior": (
        ["eval", "prior-acceptance", "--prior", "{tmp}/nope", "--clip", "{tmp}/nope2"],
        "nope",
    ),
    "eval dreamfusion-acceptance, no prior": (["eval", "dreamfusion-acceptance", "--prior", "{tmp}/nope"], "nope"),
    "eval eg3d-acceptance, no model": (
        ["eval", "eg3d-acceptance", "--model", "{tmp}/nope", "--train", "{tmp}", "--held-out", "{tmp}"]
        + ["--out", "{tmp}/o"],
        "nope",
    ),
    "eval rprecision --k 0": (["eval", "rprecision", "--renders", "{tmp}", "--prompts", "{tmp}/p", "--k", "0"], "--k"),
    "eval kid, no dataset": (["eval", "kid", "--model", "{model}", "--data", "{tmp}/nope", "--features", "sw"], "nope"),
    "eval id-sw --world x": (["eval", "id-sw", "--model", "{tmp}/m", "--world", "x"], "heads or heads2"),
    "bench --out under a file": (["bench", "render", "--quick", "--out", "{renders}/renders.json/b.json"], "is a file"),
    "bench --out a folder": (["bench", "render", "--quick", "--out", "{tmp}"], "is a folder"),
    "view --width 0": (["view", "--width", "0"], "--width"),
    "renders make OUT under a file": (
        ["renders", "make", "--out", "{renders}/renders.json/x", "--count", "1"],
        "is a file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_numbers_and_folders_are_one_clear_error(case, tmp_path, render_set):
    args, needle = BAD_INPUTS[case]
    from tristudio.core.io.assets import shipped_eg3d_path

    args = [a.format(tmp=tmp_path, renders=render_set, model=shipped_eg3d_path()) for a in args]
    clear_error(*run(*args), needle)


@pytest.mark.parametrize("command", ["generate", "sample", "fit", "dreamfusion"])
def test_out_that_is_a_file_is_one_clear_error(command, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    args = {
        "generate": ["generate", "--out", blocker / "x"],
        "sample": ["sample", "a cube", "--out", blocker],
        "fit": ["fit", "object:0", "--out", blocker],
        "dreamfusion": ["dreamfusion", "a cube", "--out", blocker],
    }[command]
    clear_error(*run(*args), "is a file")
    assert blocker.read_text() == "keep me"


def test_bench_out_replaces_a_benchmark_json_but_never_another_file(tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    clear_error(*run("bench", "render", "--quick", "--out", notes), "is not a benchmark's JSON")
    assert notes.read_text() == "my notes"
    monkeypatch.chdir(tmp_path)  # the default path, bench/render.json, holding something else
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "render.json").write_text('{"benchmark": "mine", "rows": "my data"}')
    clear_error(*run("bench", "render", "--quick"), "is not a benchmark's JSON")
    assert (tmp_path / "bench" / "render.json").read_text() == '{"benchmark": "mine", "rows": "my data"}'
    out = tmp_path / "render.json"
    for _ in range(2):  # written, then replaced by the next measurement
        code, text = run("bench", "render", "--quick", "--out", out)
        assert code == 0, text
    assert json.loads(out.read_text())["benchmark"] == "render"
    before = out.read_text()  # another benchmark's JSON is not this one's to replace
    clear_error(*run("bench", "representations", "--quick", "--out", out), "is `bench render`'s JSON")
    assert out.read_text() == before


def test_out_that_is_a_dangling_link_is_named(tmp_path):
    dangle = tmp_path / "dangle"
    dangle.symlink_to(tmp_path / "nowhere")
    clear_error(*run("fit", "object:0", "--out", dangle), f"{dangle} is a link to {tmp_path / 'nowhere'}")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["generate", "sample", "fit", "dreamfusion", "train eg3d", "eval id-sw-train"])
def test_out_named_like_a_file_is_one_clear_error_and_nothing_is_made(command, tmp_path):
    """`--out grid.png` (a slip for a file name) is refused before anything is written: the folder is not created."""
    slip = tmp_path / "grid.png"
    args = {
        "generate": ["generate", "--out", slip],
        "sample": ["sample", "a cube", "--out", slip],
        "fit": ["fit", "object:0", "--out", slip],
        "dreamfusion": ["dreamfusion", "a cube", "--out", slip],
        "train eg3d": ["train", "eg3d", "--data", tmp_path, "--out", slip],
        "eval id-sw-train": ["eval", "id-sw-train", "--out", slip],
    }[command]
    clear_error(*run(*args), "grid.png", "is a folder")
    assert not slip.exists()


def _tiny_clip(work: Path, render_set: Path, *extra: str):
    return run(
        "train", "clip", "--out", work, "--data", render_set, "--steps", "2", "--batch", "4", "--image-size", "16",
        "--eval-every", "0", "--ckpt-every", "1", "--threads", "1", *extra,
    )  # fmt: skip


def test_a_folder_made_in_a_file_manager_is_empty_enough_for_a_new_run(tmp_path, render_set):
    """Hidden files (.DS_Store) and empty folders are nothing a run writes over: such a folder takes a new run."""
    work = tmp_path / "finder"
    (work / "sub").mkdir(parents=True)
    (work / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    code, output = _tiny_clip(work, render_set)
    assert code == 0, output
    assert (work / ".DS_Store").read_bytes() == b"\0\0\0\1Bud1" and (work / "export").is_dir()


def test_train_clip_existing_run_and_resume_before_the_first_checkpoint(tmp_path, render_set):
    work = tmp_path / "w"
    work.mkdir()
    config = {"kind": "clip", "clip": {"steps": 2, "batch_size": 4, "image_size": 16}, "data": [str(render_set)]}
    (work / "config.json").write_text(json.dumps(config))
    code, output = _tiny_clip(work, render_set, "--resume")  # no checkpoint yet: starts from step 0, says so
    assert code == 0, output
    assert "no checkpoint" in output and (work / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    clear_error(*_tiny_clip(work, render_set), "already holds a run", "--resume")  # now it has trained state


def test_a_new_run_replaces_a_run_that_has_no_checkpoint(tmp_path, render_set):
    """A run refused or killed before its first checkpoint (config.json, command.json, a log, no checkpoint) holds
    nothing trained: a new run there replaces it and says so, so the folder is never stuck (a retry with fixed
    options used to be refused as "already holds a run", and --resume repeated the first mistake)."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "config.json").write_text("{}")
    (work / "command.json").write_text('{"command": "train clip", "options": {}}')  # a run the CLI started
    (work / "log.jsonl").write_text('{"event": "start"}\n')
    code, output = _tiny_clip(work, render_set)
    assert code == 0 and "replacing the run" in output and "nothing trained is lost" in output, output
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert {"event": "start"} not in records and any("step" in r for r in records)  # the new run's log only
    # a config.json without command.json is not a run this can tell is ours (a model folder): refused, untouched
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "clip"}')
    (model / "log.jsonl").write_text("my notes\n")
    clear_error(*_tiny_clip(model, render_set), "no run this can replace")
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "log.jsonl"]
    assert (model / "config.json").read_text() == '{"model_type": "clip"}' and (model / "log.jsonl").read_text()


def _trainer_args(command: str, folder: Path, tmp_path: Path, render_set: Path, prior: Path) -> list:
    """The smallest command line of each trainer, writing its run into `folder`."""
    if command == "train eg3d":
        from tristudio.core.data.dataset import write_dataset
        from tristudio.core.worlds.camera_sampling import head_cameras

        data = write_dataset(
            tmp_path / "ds", torch.zeros(2, 32, 32, 3, dtype=torch.uint8), head_cameras([0, 1]).label()
        )
        return ["train", "eg3d", "--data", data, "--preset", "tiny", "--kimg", "0.004", "--out", folder]
    return {
        "fit": ["fit", "object:0", "--steps", "1", "--views", "2", "--test-views", "1", "--resolution", "8", "--out"],
        "dreamfusion": ["dreamfusion", "a cube", "--prior", prior, "--steps", "1", "--out"],
        "train clip": [
            "train",
            "clip",
            "--data",
            render_set,
            "--steps",
            "1",
            "--batch",
            "4",
            "--image-size",
            "16",
            "--out",
        ],
        "train prior": ["train", "prior", "--data", render_set, "--clip", tmp_path, "--steps", "1", "--out"],
    }[command] + [folder]


@pytest.mark.parametrize("command", ["train eg3d", "fit", "dreamfusion", "train clip", "train prior"])
def test_every_trainer_follows_one_run_folder_rule(command, tmp_path, render_set, tiny_prior_dir):
    """TrainingRun.check_start, for all five trainers alike: a new run refuses a folder whose run has a checkpoint,
    --resume refuses a folder that holds no run, and neither writes anything."""
    used, empty = tmp_path / "used", tmp_path / "empty"
    (used / "checkpoints" / "step-00000001").mkdir(parents=True)
    (used / "checkpoints" / "latest").write_text("step-00000001\n")
    (used / "config.json").write_text('{"prompt": "a cube"}')
    before = sorted(str(p) for p in used.rglob("*"))
    clear_error(
        *run(*_trainer_args(command, used, tmp_path, render_set, tiny_prior_dir)), "already holds a run", "--resume"
    )
    assert sorted(str(p) for p in used.rglob("*")) == before
    args = _trainer_args(command, empty, tmp_path, render_set, tiny_prior_dir)
    clear_error(*run(*args, "--resume"), "holds no run to resume", "drop --resume")
    assert not empty.exists() or not any(empty.iterdir())
    # a user's folder (files the run would write over: log.jsonl, model/, export/): refused, every byte kept
    mine = tmp_path / "mine"
    for name in ("log.jsonl", "model/model.json", "export/notes.txt"):
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_text(f"my {name}\n")
    before = {str(p): p.read_bytes() for p in sorted(mine.rglob("*")) if p.is_file()}
    args = _trainer_args(command, mine, tmp_path, render_set, tiny_prior_dir)
    clear_error(*run(*args), "holds files that are not a tristudio run (export, log.jsonl, model)", "new or empty")
    assert {str(p): p.read_bytes() for p in sorted(mine.rglob("*")) if p.is_file()} == before
    assert sorted(p.name for p in mine.iterdir()) == ["export", "log.jsonl", "model"]
    # a command.json that is not ours does not make the folder a replaceable run
    (mine / "command.json").write_text("my own notes\n")
    clear_error(*run(*args), "command.json is not valid JSON")
    assert (mine / "command.json").read_text() == "my own notes\n" and (
        mine / "log.jsonl"
    ).read_text() == "my log.jsonl\n"


def test_a_second_run_on_the_same_folder_names_the_lock_and_its_holder(tmp_path, render_set):
    work = tmp_path / "w"
    work.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (work / ".lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        code, output = _tiny_clip(work, render_set)
        clear_error(code, output, ".lock", f"pid {holder.pid}")
        assert not (work / "config.json").exists()  # nothing of the second run was written
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over
    code, output = _tiny_clip(work, render_set)
    assert code == 0 and "stale lock" in output, output
    assert not (work / ".lock").exists()


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, render_set):
    import tristudio.core.io.checkpoint as C
    from tristudio.core.io.run_checkpoints import latest_step

    real = C.save_file
    calls = {"n": 0}

    def full(tensors, path, *a, **k):
        calls["n"] += 1
        if calls["n"] >= 2:
            from safetensors import SafetensorError

            raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(C, "save_file", full)
    code, output = _tiny_clip(tmp_path / "w", render_set)
    clear_error(code, output, "No space left on device")
    assert latest_step(tmp_path / "w") == 1


# ------------------------------------------------------------------------------------------ silent wrong results


@pytest.mark.parametrize("option, value", [("--trunc", "nan"), ("--yaw", "inf"), ("--pitch", "-inf")])
def test_non_finite_view_numbers_are_refused_not_rendered_black(option, value, tmp_path):
    out = tmp_path / "g"
    clear_error(*run("generate", "--seeds", "0", option, value, "--out", out), option)
    assert not out.exists()


@pytest.mark.parametrize("component", ["unet", "text_encoder"])
def test_a_prior_with_nan_weights_is_refused_on_load(tiny_prior_dir, tmp_path, component):
    from tristudio.core.priors import PriorLoadError, load_prior

    bad = nan_prior(tiny_prior_dir, tmp_path / "nan_prior", component)
    with pytest.raises(PriorLoadError, match=f"{component}.*NaN or Inf"):
        load_prior(bad, "cpu")
    clear_error(*run("sample", "a cube", "--prior", bad, "--out", tmp_path / "s", "--steps", "2"), "NaN")
    code, output = run("dreamfusion", "a cube", "--prior", bad, "--out", tmp_path / "d", "--steps", "1")
    clear_error(code, output, "NaN")
    assert not (tmp_path / "s").exists()


def test_a_damaged_prior_is_one_line_naming_what_is_damaged(tiny_prior_dir, tmp_path):
    """A prior without tokenizer.json ignored every prompt (exit 0); a UNet weight missing crashed on meta tensors; a
    truncated text encoder was a SafetensorError traceback (sample) or a line naming no file (dreamfusion)."""
    from safetensors.torch import load_file, save_file

    no_vocab = shutil.copytree(tiny_prior_dir, tmp_path / "no_vocab")
    (no_vocab / "tokenizer" / "tokenizer.json").unlink()
    missing = shutil.copytree(tiny_prior_dir, tmp_path / "missing")
    unet_file = missing / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(unet_file))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(unet_file))
    truncated = shutil.copytree(tiny_prior_dir, tmp_path / "truncated")
    te_file = truncated / "text_encoder" / "model.safetensors"
    os.truncate(te_file, 100)
    cases = [
        (no_vocab, str(no_vocab / "tokenizer"), "no tokenizer.json"),
        (missing, str(missing / "unet"), dropped),
        (truncated, str(te_file), "corrupt or truncated"),
    ]
    for prior, *needles in cases:
        out = tmp_path / f"s_{prior.name}"
        clear_error(
            *run("sample", "a red cube", "a blue sphere", "--prior", prior, "--out", out, "--steps", "2"), *needles
        )
        run_dir = tmp_path / f"d_{prior.name}"
        clear_error(*run("dreamfusion", "a cube", "--prior", prior, "--out", run_dir, "--steps", "1"), *needles)
        assert not out.exists() and not (run_dir / "checkpoints").exists()
    code, output = run("sample", "a red cube", "--prior", tiny_prior_dir, "--out", tmp_path / "ok", "--steps", "2")
    assert code == 0 and list((tmp_path / "ok").glob("*.png")), output


def test_train_clip_resume_refuses_a_damaged_saved_tokenizer(tmp_path, render_set):
    """The run's tokenizer without tokenizer.json resumed into a traceback (2-token model vs the checkpoint)."""
    from tristudio.core.io.run_checkpoints import latest_step

    work = tmp_path / "w"
    assert _tiny_clip(work, render_set)[0] == 0
    saved = work / "tokenizer" / "tokenizer.json"
    shutil.move(saved, tmp_path / "tokenizer.json")
    clear_error(*_tiny_clip(work, render_set, "--resume", "--steps", "3"), str(work / "tokenizer"), "no tokenizer.json")
    shutil.move(tmp_path / "tokenizer.json", saved)
    code, output = _tiny_clip(work, render_set, "--resume", "--steps", "3")
    assert code == 0 and latest_step(work) == 3, output


def test_a_long_prompt_keeps_its_view_words_and_warns(tiny_prior_dir):
    from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
    from tristudio.core.priors import load_prior

    prior = load_prior(tiny_prior_dir, "cpu")
    prompt = ("a red cube with a long story " * 400)[:10_000]
    df = DreamFusion(DreamFusionConfig(prompt=prompt, resolution=16, grid_resolution=32, samples=24), prior)
    assert df.prompt_note and "cut" in df.prompt_note
    read = {}
    for word in ("front view", "back view", "side view"):
        text = df._view_texts[word]
        assert not prior.truncated(text)  # the encoder reads all of it ...
        read[word] = prior.tokenizer(text, truncation=True, max_length=prior.max_prompt_tokens).input_ids
        assert text.endswith(word)  # ... view words included
    assert read["front view"] != read["back view"] != read["side view"]
    # what the encoder reads of the naive '<prompt>, <view>' is the same for every view: the defect this fixes
    naive = [prior.tokenizer(f"{prompt}, {w}", truncation=True, max_length=77).input_ids for w in ("front", "back")]
    assert naive[0] == naive[1]
    # a short prompt is untouched
    short = DreamFusion(DreamFusionConfig(prompt="a red cube", resolution=16, grid_resolution=32, samples=24), prior)
    assert short.prompt_note is None and short._view_texts["back view"] == "a red cube, back view"


def test_sample_warns_about_a_truncated_prompt(tiny_prior_dir, tmp_path):
    code, output = run(
        "sample", "a cube " * 200, "--prior", tiny_prior_dir, "--out", tmp_path / "s", "--steps", "1", "-n", "1"
    )
    assert code == 0 and "warning" in output and "tokens" in output, output
    assert "Loading weights" not in output, output  # the loaders' own bars stay quiet: the command's lines are read


def test_model_json_sizes_are_bounded_with_the_field_named(tmp_path):
    import json
    import shutil

    from tristudio.core.eg3d.load import GeneratorLoadError, load_generator
    from tristudio.core.io.checkpoint import HASH_KEY

    shipped = Path(__file__).resolve().parent.parent / "core" / "assets" / "eg3d_heads"
    for field, value in [("img_resolution", 2**20), ("plane_resolution", 3), ("w_dim", "512"), ("z_dim", 10**9)]:
        folder = tmp_path / field
        shutil.copytree(shipped, folder)
        meta = json.loads((folder / "model.json").read_text())
        meta["init_kwargs"][field] = value
        meta.pop(HASH_KEY, None)
        (folder / "model.json").write_text(json.dumps(meta))
        with pytest.raises(GeneratorLoadError, match=rf"model.json: init_kwargs.{field} is"):
            load_generator(folder)
        clear_error(*run("generate", "--model", folder, "--out", tmp_path / "g"), f"init_kwargs.{field}")


RENDERING_FIELDS = [  # hand edits that crashed generate (box_warp 0, a 2-vector pivot), rendered black (NaN) or loaded
    ("box_warp", 0),
    ("box_warp", float("nan")),
    ("avg_camera_pivot", [0, 0]),
    ("avg_camera_radius", -1),
    ("ray_start", 3.5),  # beyond ray_end 3.3
    ("ray_end", "auto"),  # EG3D's "auto" is for both or neither
]


@pytest.mark.parametrize(("field", "value"), RENDERING_FIELDS)
def test_model_json_rendering_kwargs_are_checked_with_the_field_named(field, value, tmp_path):
    import shutil

    from tristudio.core.eg3d.load import GeneratorLoadError, load_generator
    from tristudio.core.io.checkpoint import HASH_KEY

    folder = tmp_path / "m"
    shutil.copytree(Path(__file__).resolve().parent.parent / "core" / "assets" / "eg3d_heads", folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["init_kwargs"]["rendering_kwargs"][field] = value
    meta.pop(HASH_KEY, None)
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GeneratorLoadError, match=rf"model.json: init_kwargs.rendering_kwargs.{field} is"):
        load_generator(folder)
    code, output = run("generate", "--model", folder, "--seeds", "0", "--out", tmp_path / "g")
    clear_error(code, output, "model.json", f"rendering_kwargs.{field}")
    assert code == 1 and not (tmp_path / "g").exists()


def test_model_json_rendering_kwargs_auto_ray_range_loads(tmp_path):
    """EG3D's convention (its ShapeNet config): ray_start = ray_end = "auto" marches the ray's segment in the box."""
    from tristudio.core.eg3d.load import check_rendering

    check_rendering({"rendering_kwargs": {"ray_start": "auto", "ray_end": "auto", "box_warp": 1.6}}, "model.json")


def test_model_json_sr_kwargs_null_is_the_generators_defaults(tmp_path):
    """A null sr_kwargs means the generator's defaults (TriPlaneGenerator takes None): the size check accepts it."""
    from tristudio.core.eg3d.load import GeneratorLoadError, check_sizes

    check_sizes({"sr_kwargs": None, "img_resolution": 64}, "model.json")
    check_sizes({"sr_kwargs": {"block_channels": [8, 8]}}, "model.json")
    with pytest.raises(GeneratorLoadError, match="init_kwargs.sr_kwargs.block_channels"):
        check_sizes({"sr_kwargs": {"block_channels": [8, 0]}}, "model.json")


def test_dreamfusion_resume_refuses_another_prompt_before_loading_the_prior(tmp_path, tiny_prior_dir):
    """--resume continues the run in the folder: a different prompt would silently optimise the old object for the new
    text. The saved config.json names the run's prompt, so the refusal comes before any model is loaded."""
    used = tmp_path / "run"
    used.mkdir()
    (used / "config.json").write_text(json.dumps({"prompt": "a red cube"}))
    args = ["dreamfusion", "a blue sphere", "--prior", tiny_prior_dir, "--steps", "1", "--out", used, "--resume"]
    clear_error(*run(*args), "is a run for 'a red cube'", "'a blue sphere'")
    assert sorted(p.name for p in used.iterdir()) == ["config.json"]
