"""CLI messages: CUDA asked for without CUDA, the top-level help built from the registered commands, and progress bars
that report the true rate (a fake clock, not a timed test)."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from tristudio.cli.app import app, command_names
from tristudio.core.io.progress import EtaColumn, RateColumn, step_progress, true_rate


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _lines(result) -> list[str]:
    return [line for line in result.output.strip().splitlines() if line.strip()]


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "--device", "cuda", "--seeds", "0"],
        ["sample", "a red cube", "--device", "cuda"],
        ["dreamfusion", "a red cube", "--device", "cuda"],
        ["bench", "render", "--device", "cuda", "--quick"],
    ],
)
def test_cuda_without_cuda_is_one_clear_line(no_cuda, args, tmp_path):
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o")])
    lines = _lines(result)
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: CUDA requested but not available"), lines
    assert "bench" not in lines[0]


def test_device_resolution():
    from tristudio.core.device import DeviceError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_device_resolution_refuses_devices_tristudio_does_not_run_on():
    """torch parses 'meta' and 'mps' as devices; taking them gave a traceback (or empty tensors) later, not one line."""
    from tristudio.core.device import DeviceError, resolve_device

    for name in ("meta", "mps"):
        with pytest.raises(DeviceError, match=f"unsupported device '{name}'; expected auto, cpu or cuda"):
            resolve_device(name)
    assert resolve_device("cpu:0") == torch.device("cpu", 0)


@pytest.mark.parametrize("name", ["render", "generator", "train", "prior", "sds", "viewer"])
def test_every_benchmark_takes_its_device_through_resolve_device(no_cuda, name):
    """`run(device)` of a bench module, called directly (the interface core/bench/__init__.py states, "auto" included),
    resolves the device the one way: cuda without CUDA is the DeviceError line before any work, not a torch error."""
    import importlib

    from tristudio.core.device import DeviceError

    with pytest.raises(DeviceError, match="CUDA requested but not available"):
        importlib.import_module(f"tristudio.core.bench.{name}").run(device="cuda", quick=True)


def test_top_level_help_lists_every_registered_subcommand(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one row per command
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    groups = {g.name: g.typer_instance for g in app.registered_groups}
    assert {"train", "eval", "bench", "dataset"} <= set(groups)
    for name, group in groups.items():
        names = command_names(group)
        assert names, name
        row = next(line for line in result.output.splitlines() if f" {name} " in line)
        for sub in names:
            assert sub in row, (name, sub, row)
    # the two the issue found missing, and nothing hard-coded: a module adding to a group shows up
    assert {"eg3d", "clip", "prior"} <= set(command_names(groups["train"]))
    assert "rprecision" in command_names(groups["eval"])


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("start", "steps", "seconds"), [(0, 300, 80.0), (400, 600, 360.0), (0, 7, 0.5)])
def test_progress_reports_steps_over_elapsed_time(start, steps, seconds):
    clock = FakeClock()
    console = Console(file=io.StringIO(), width=120)
    progress = step_progress(console, get_time=clock)
    task_id = progress.add_task("sds", total=start + steps + 100, completed=start, first=start)
    task = progress.tasks[0]
    for i in range(1, steps + 1):  # uneven step times: the rate is still the mean over the whole session
        clock.t += seconds / steps * (0.5 if i % 2 else 1.5)
        progress.update(task_id, completed=start + i)
    elapsed = clock.t - 1000.0
    expected = steps / elapsed
    assert task.elapsed == pytest.approx(elapsed)
    assert true_rate(task) == pytest.approx(expected, rel=1e-6)
    text = RateColumn().render(task).plain
    if expected >= 1:
        assert text == f"{expected:.2f} steps/s"
    else:
        assert text == f"{1 / expected:.2f} s/step"
    left = 100 / expected
    h, rem = divmod(int(round(left)), 3600)
    assert EtaColumn().render(task).plain == f"{h}:{rem // 60:02d}:{rem % 60:02d}"


@pytest.mark.parametrize(
    "args, word",
    [
        (["--methods", "sds,xyz"], "xyz"),
        (["--marks", "1000,300"], "increasing"),
        (["--marks", "a,b"], "comma-separated"),
    ],
)
def test_dreamfusion_acceptance_refuses_bad_lists_before_loading_anything(args, word):
    res = CliRunner().invoke(app, ["eval", "dreamfusion-acceptance", "--prior", "/nonexistent", *args])
    assert res.exit_code == 2 and word in res.output  # typer's usage error, not the missing prior's traceback
    assert "Traceback" not in res.output


def test_bare_tristudio_opens_the_viewer_with_the_view_commands_parsed_defaults(monkeypatch):
    """`tristudio` with no command is `tristudio view`: the app gets real values (not typer's OptionInfo objects,
    which a direct call of the view function would pass for every option), the same as `tristudio view` gives."""
    import tristudio.cli.commands.view as view_mod
    import tristudio.viewer.app as viewer_app

    made = []

    class FakeApp:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def run(self):
            pass

    monkeypatch.setattr(view_mod, "display_problem", lambda: None)
    monkeypatch.setattr(viewer_app, "ViewerApp", FakeApp)
    runner = CliRunner()
    for args in ([], ["view"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    bare, explicit = made
    assert bare.keys() == explicit.keys()
    for key in bare:
        if key != "state":
            assert bare[key] == explicit[key], key
    assert bare["threads"] is None and bare["model_path"] is None and bare["window_size"] == (1280, 800)
    assert bare["state"].capture.capture_dir == explicit["state"].capture.capture_dir == "captures"


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "pose", "--model", "/no/such/model"],  # fail() through clean_errors
        ["fit", "object:0", "--steps", "0", "--out", "x"],  # typer.BadParameter
        ["dataset", "make", "--world", "objects", "--cameras", "rebalanced", "--out", "x"],  # an error echo
        ["train", "eg3d", "--data", "/no/such/data", "--out", "x"],
    ],
)
def test_errors_go_to_stderr_and_stdout_holds_only_results(args, tmp_path, monkeypatch):
    """A researcher pipes results (`tristudio eval pose ... > pose.json`): every kind of error must leave stdout
    clean and say its one line on stderr."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "error" not in result.stdout.lower() and "Traceback" not in result.stdout, result.stdout
    assert "error" in result.stderr.lower() or "Invalid value" in result.stderr, result.stderr
