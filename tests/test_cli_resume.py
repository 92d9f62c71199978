"""--resume continues a run as it was started (cli/resume.py): a new run records its command line in command.json; on
--resume, options left out take the run's values and options typed with other values are refused, naming them."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tristudio.cli.app import app

FIT = ["fit", "object:0", "--repr", "grid", "--views", "2", "--resolution", "8", "--rays", "32", "--samples", "8"]


def _cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture()
def fit_run(tmp_path) -> Path:
    run = tmp_path / "fit"
    code, out = _cli(*FIT, "--steps", "2", "--ckpt-every", "2", "--out", run)
    assert code == 0, out
    return run


def test_a_new_run_records_its_command_line(fit_run):
    command = json.loads((fit_run / "command.json").read_text())
    assert command["command"] == "fit"
    options = command["options"]
    assert options["scene"] == "object:0" and options["representation"] == "grid" and options["views"] == 2
    assert options["out"] == str(fit_run.absolute()) and options["lr"] is None  # defaults recorded too
    assert {"scene", "representation", "views", "steps", "out"} <= set(command["typed"])
    assert "lr" not in command["typed"]


def test_resume_needs_only_the_folder_and_continues_with_the_runs_options(fit_run, tmp_path):
    moved = tmp_path / "moved"
    fit_run.rename(moved)  # a run folder may move: --out is where it is now, not compared
    recorded = (moved / "command.json").read_bytes()
    code, out = _cli("fit", "object:0", "--out", moved, "--resume", "--steps", "4")
    assert code == 0, out
    # the run's own representation, views and resolution (the defaults: tri-planes, 24 views of 64 px)
    assert "2 training views" in out and "8^2; grid" in out and "resumed from" in out
    steps = [json.loads(line).get("step") for line in (moved / "log.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 4
    now, then = json.loads((moved / "command.json").read_text()), json.loads(recorded)
    assert now["options"].pop("steps") == 4 and then["options"].pop("steps") == 2  # the latest total is the run's
    assert now == then  # the rest of the start's command line stays
    assert json.loads((moved / "eval.json").read_text())["representation"] == "grid"


def test_resume_refuses_other_values_of_what_the_run_is_and_writes_nothing(fit_run):
    before = _snapshot(fit_run)
    code, out = _cli("fit", "object:1", "--repr", "mlp", "--out", fit_run, "--resume", "--steps", "4")
    assert code == 1 and "Traceback" not in out
    flat = " ".join(out.split())
    assert "SCENE 'object:1' (the run's: 'object:0')" in flat and "--repr 'mlp' (the run's: 'grid')" in flat
    assert "command.json" in flat and "another --out" in flat
    assert _snapshot(fit_run) == before
    # the same values typed again, and another checkpoint cadence (how the run runs, not what it is), are accepted
    code, out = _cli(*FIT, "--out", fit_run, "--resume", "--steps", "3", "--ckpt-every", "1", "--log-every", "1")
    assert code == 0, out


def test_a_broken_command_json_is_one_clear_line(fit_run):
    (fit_run / "command.json").write_text("{not json")
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume")
    assert code == 1 and "Traceback" not in out and "command.json is not valid JSON" in " ".join(out.split())


def test_a_run_without_command_json_resumes_with_the_options_given(fit_run):
    (fit_run / "command.json").unlink()  # as a run started by an older tristudio
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume", "--steps", "4")
    assert code == 1 and "holds a 'grid' field, not 'triplane'" in out  # nothing recorded: the defaults; one line
    code, out = _cli(*FIT, "--field-resolution", "16", "--out", fit_run, "--resume", "--steps", "4")
    assert code == 1 and "Traceback" not in out and "is not the one these options make (grid:" in out, out
    code, out = _cli(*FIT, "--out", fit_run, "--resume", "--steps", "4")
    assert code == 0, out


def test_dreamfusion_resume_without_steps_keeps_the_runs_total(tmp_path, tiny_prior_dir):
    run = tmp_path / "df"
    base = ["dreamfusion", "a red cube", "--prior", tiny_prior_dir, "--resolution", "16", "--render-every", "0"]
    code, out = _cli(*base, "--steps", "2", "--mesh-format", "ply", "--out", run)  # no --mesh: would be ignored
    assert code == 2 and "--mesh-format without --mesh" in " ".join(out.replace("│", " ").split()), out
    assert not run.exists()
    code, out = _cli(*base, "--steps", "2", "--out", run)
    assert code == 0, out
    log = (run / "log.jsonl").read_text()
    code, out = _cli("dreamfusion", "a red cube", "--out", run, "--resume", "--mesh-format", "obj")  # no --mesh then
    assert code == 2 and "--mesh-format without --mesh" in " ".join(out.replace("│", " ").split()), out
    code, out = _cli("dreamfusion", "a red cube", "--out", run, "--resume", "--mesh", "--mesh-resolution", "16")
    assert code == 0, out
    assert (run / "log.jsonl").read_text() == log  # no step taken: the run's 2 steps, not the default 1000
    assert "at step 2 of 2: no step to take" in out and "nan" not in out  # no empty bar with a NaN loss
    assert (run / "mesh.glb").is_file()
    code, out = _cli("dreamfusion", "a red cube", "--out", run, "--resume", "--guidance", "csd")
    assert code == 1 and "--guidance 'csd' (the run's: 'sds')" in " ".join(out.split())
    code, out = _cli(*FIT, "--steps", "1", "--out", run)  # another command's run: --resume would not fit it
    said = " ".join(out.split())
    assert code == 1 and "already holds a `tristudio dreamfusion` run: choose another folder" in said, said


def test_eg3d_resume_keeps_a_typed_option_over_the_runs_schedule(tmp_path):
    """The schedule's values replace the flags' defaults but not typed flags (cli/commands/train.py); a resumed run
    knows which flags its start typed (command.json "typed"), so its --density-reg stays the one typed."""
    from test_train_run import _make_dataset

    data = _make_dataset(tmp_path / "data", n=4)
    run = tmp_path / "eg3d"
    args = ["train", "eg3d", "--data", data, "--preset", "tiny", "--batch", "2", "--kimg", "0.002", "--device", "cpu"]
    args += ["--sample-every", "0", "--ckpt-every", "1", "--schedule", "medium-two-stage", "--density-reg", "0.125"]
    code, out = _cli(*args, "--out", run)
    assert code == 0, out
    assert json.loads((run / "config.json").read_text())["loss"]["density_reg"] == 0.125
    code, out = _cli("train", "eg3d", "--out", run, "--resume", "--kimg", "0.004")
    assert code == 0, out
    config = json.loads((run / "config.json").read_text())
    assert config["loss"]["density_reg"] == 0.125 and config["kimg"] == 0.004
    assert config["loss"]["density_reg_interval"] == 4 and Path(config["data"]) == data.absolute()


def test_dreamfusion_runs_default_to_a_folder_per_prompt(tmp_path, monkeypatch, tiny_prior_dir):
    from tristudio.core.dreamfusion.prompts import run_name

    assert run_name("A red cube, on a table!") == "a_red_cube_on_a_table" and run_name("?!") == "prompt"
    assert run_name("café rouge") == "café_rouge" and run_name("一个立方体") == "一个立方体"
    assert len(run_name("x" * 500)) == 64
    monkeypatch.chdir(tmp_path)
    base = ["--prior", tiny_prior_dir, "--resolution", "16", "--render-every", "0", "--steps", "1"]
    for prompt in ("a red cube", "A blue ball!", "A red cube!"):  # the last shares the first's name
        code, out = _cli("dreamfusion", prompt, *base)
        assert code == 0, out
    runs = tmp_path / "runs" / "dreamfusion"
    assert sorted(p.name for p in runs.iterdir()) == ["a_blue_ball", "a_red_cube", "a_red_cube-2"]
    assert json.loads((runs / "a_red_cube-2" / "config.json").read_text())["prompt"] == "A red cube!"
    code, out = _cli("dreamfusion", "a red cube.", *base)  # a third: -3; then -2 is deleted
    assert code == 0 and (runs / "a_red_cube-3").is_dir(), out
    shutil.rmtree(runs / "a_red_cube-2")
    code, out = _cli("dreamfusion", "a red cube.", "--resume", "--steps", "2")  # still found past the gap
    assert code == 0 and "a_red_cube-3" in out, out
    # --resume finds the prompt's run without --out, and takes its options (the prior, the size)
    code, out = _cli("dreamfusion", "a red cube", "--resume", "--steps", "2")
    assert code == 0, out
    steps = [json.loads(line).get("step") for line in (runs / "a_red_cube" / "log.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 1  # step indices 0 and 1: two steps in all


def test_ctrl_c_says_where_the_run_stands_and_the_command_that_continues_it(fit_run, monkeypatch):
    import shlex

    from tristudio.core.fitting import loop

    real = loop.Fitter.step

    def step_then_interrupt(self):  # Ctrl-C during step 4 (after the checkpoint at step 2)
        if self.step_count == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(loop.Fitter, "step", step_then_interrupt)
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume", "--steps", "6")
    assert code != 0
    line = " ".join(out.split())
    assert f"interrupted: {fit_run} is kept; its last checkpoint is step 2" in line
    again = shlex.split(line.split("Continue with: ")[1])
    assert again[:2] == ["tristudio", "fit"] and again[-3:] == ["--out", str(fit_run), "--resume"]
    monkeypatch.setattr(loop.Fitter, "step", real)
    code, out = _cli(*again[1:], "--steps", "4")  # the printed command continues the run (from its checkpoint)
    assert code == 0 and "at step 2" in out, out


def test_resume_refuses_another_commands_run_before_writing_anything(fit_run):
    before = _snapshot(fit_run)
    code, out = _cli("train", "clip", "--out", fit_run, "--resume", "--steps", "5")
    assert code == 1 and "is a `tristudio fit` run, not a `tristudio train clip` one" in " ".join(out.split())
    assert _snapshot(fit_run) == before


def test_resume_reads_paths_however_they_are_spelled_and_names_bad_entries(fit_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spelled = f"../{tmp_path.name}/./{fit_run.name}/"  # the same folder
    code, out = _cli(*FIT, "--out", spelled, "--resume", "--steps", "3")
    assert code == 0, out
    # an option the run left to its default, typed now: said as such
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume", "--lr", "0.01")
    assert code == 1 and "--lr 0.01 (the run's: left to its default)" in " ".join(out.split())
    # a hand-edited entry of the wrong type: one line naming it, no traceback
    command = json.loads((fit_run / "command.json").read_text())
    command["options"]["rays"] = "many"
    (fit_run / "command.json").write_text(json.dumps(command))
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume")
    assert code == 1 and "Traceback" not in out and "--rays is 'many'" in " ".join(out.split())


def test_the_latest_total_is_the_runs_own(fit_run):
    """--steps typed on a resume becomes the run's: the next --resume without it keeps that total."""
    assert _cli("fit", "object:0", "--out", fit_run, "--resume", "--steps", "4")[0] == 0
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume")
    assert code == 0 and json.loads((fit_run / "command.json").read_text())["options"]["steps"] == 4
    steps = [json.loads(line).get("step") for line in (fit_run / "log.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 4  # not cut back to the first start's 2


def test_a_refused_start_leaves_no_folders_behind(tmp_path, monkeypatch):
    """run_lock removes the folders it made when the command inside it wrote nothing (an empty prompt, an unknown
    method, --resume of nothing), and never a folder that was there before or holds anything."""
    from tristudio.core.io.runlock import run_lock

    monkeypatch.chdir(tmp_path)
    for args in (["dreamfusion", " "], ["dreamfusion", "a cat", "--guidance", "xyz"], ["fit", "object:0", "--out",
                 "nothing/here", "--resume"]):  # fmt: skip
        assert _cli(*args)[0] != 0
        assert not any(tmp_path.iterdir()), (args, list(tmp_path.rglob("*")))
    (tmp_path / "mine").mkdir()
    with run_lock(tmp_path / "mine" / "a" / "b"):
        (tmp_path / "mine" / "a" / "note.txt").write_text("kept")
    assert not (tmp_path / "mine" / "a" / "b").exists() and (tmp_path / "mine" / "a" / "note.txt").is_file()
    with run_lock(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine").is_dir()  # there before: stays


def test_a_refused_resume_records_nothing(fit_run):
    """Typed FREE options become the run's only once the command has checked them and holds the run's lock."""
    recorded = (fit_run / "command.json").read_bytes()
    code, out = _cli("fit", "object:0", "--out", fit_run, "--resume", "--steps", "0")
    assert code != 0 and (fit_run / "command.json").read_bytes() == recorded
    import os
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (fit_run / ".lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        code, out = _cli("fit", "object:0", "--out", fit_run, "--resume", "--steps", "12")
        assert code != 0 and "is in use" in out and (fit_run / "command.json").read_bytes() == recorded
    finally:
        holder.kill()
        holder.wait()


def test_resume_refuses_a_model_whose_weights_changed(tmp_path, tiny_prior_dir):
    """The same --prior path with other weights (the `train prior` run it names trained further, a folder replaced)
    is another run: command.json keeps a fingerprint of each model folder the run reads."""
    prior = tmp_path / "prior"
    shutil.copytree(tiny_prior_dir, prior)
    run = tmp_path / "df"
    base = ["dreamfusion", "a red cube", "--prior", prior, "--resolution", "16", "--render-every", "0"]
    assert _cli(*base, "--steps", "1", "--out", run)[0] == 0
    assert set(json.loads((run / "command.json").read_text())["models"]) == {"prior_path"}
    assert _cli("dreamfusion", "a red cube", "--out", run, "--resume", "--steps", "2")[0] == 0  # unchanged: fine
    unet = next((prior / "unet").glob("*.safetensors"))
    data = bytearray(unet.read_bytes())
    data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # (the last tensor's last bytes: a readable file, other weights)
    unet.write_bytes(bytes(data))
    code, out = _cli("dreamfusion", "a red cube", "--out", run, "--resume", "--steps", "3")
    assert code == 1 and "not the weights the run started with" in " ".join(out.split()), out
