"""core/threads.py: the automatic thread count's rule, and --threads on the commands that take it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core import threads as th


@pytest.mark.parametrize(
    ("cores", "load", "processes", "expected"),
    [
        (2, 0.0, 1, 2),  # idle 2-core machine: both cores
        (2, 0.6, 1, 1),  # floor(1.4 + 0.5) = 1
        (2, 0.4, 1, 2),  # floor(1.6 + 0.5) = 2
        (2, 5.0, 1, 1),  # busy: one thread, never zero
        (16, 3.2, 1, 13),  # floor(12.8 + 0.5)
        (16, 0.0, 4, 4),  # four processes share the cores
        (16, 8.0, 4, 2),  # floor(2 + 0.5)
        (3, 0.0, 4, 1),  # more processes than cores: one each
        (8, float("nan"), 1, 8),  # unknown load counts as idle
    ],
)
def test_auto_threads_rule(cores, load, processes, expected):
    assert th.auto_threads(cores=cores, load=load, processes=processes) == expected


def test_auto_threads_reads_the_os(monkeypatch):
    monkeypatch.setattr(th, "usable_cores", lambda: 4)
    monkeypatch.setattr(th.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(th.os, "getloadavg", lambda: (2.7, 1.0, 1.0))
    assert th.auto_threads() == 1  # floor(4 - 2.7 + 0.5)
    assert th.resolve_threads("auto") == th.resolve_threads(0) == th.resolve_threads(None) == 1
    assert th.resolve_threads("3") == th.resolve_threads(3) == 3
    for bad in ("-1", "many"):
        with pytest.raises(ValueError, match="expected a number >= 1, or 0 / auto"):
            th.resolve_threads(bad)


def test_more_threads_than_the_machine_has_are_refused(monkeypatch):
    monkeypatch.setattr(th.os, "cpu_count", lambda: 4)
    assert th.resolve_threads(4) == 4
    with pytest.raises(ValueError, match="5 is more than the 4 CPUs of this machine"):
        th.resolve_threads("5")


def test_apply_threads_sets_torch(monkeypatch):
    import torch

    n = torch.get_num_threads()
    try:
        monkeypatch.setattr(th, "auto_threads", lambda processes=1: 1)
        monkeypatch.setattr(th.os, "cpu_count", lambda: 2)  # (a 1-CPU machine would refuse 2)
        assert th.apply_threads("auto") == 1 and torch.get_num_threads() == 1
        assert th.apply_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(n)


@pytest.mark.parametrize(
    "command",
    [
        ["sample"],
        ["generate"],
        ["dreamfusion", "a cube"],
        ["fit"],
        ["bench", "render"],
        ["train", "prior", "--out", "w"],
    ],
)
def test_every_threads_option_takes_auto_and_refuses_nonsense(command):
    runner = CliRunner()
    name = command[:2] if command[0] in ("bench", "train") else command[:1]
    help_text = runner.invoke(app, [*name, "--help"])
    assert help_text.exit_code == 0 and "--threads" in help_text.output and "auto" in help_text.output
    result = runner.invoke(app, [*command, "--threads", "lots"])
    assert result.exit_code == 2 and "--threads" in result.output and "lots" in result.output
    for huge in ("100000", "99999999999"):  # segfaulted torch / overflowed its int before a check
        result = runner.invoke(app, [*command, "--threads", huge])
        assert result.exit_code == 2 and "--threads" in result.output, result.output
        assert f"{huge} is more than the" in result.output and "Traceback" not in result.output


def _leaf_commands(command, path=()):
    """(path, click command) for every command of the CLI tree, hidden ones included."""
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _leaf_commands(sub, (*path, name))
    else:
        yield path, command


def test_no_command_has_a_threads_option_of_another_kind():
    """The list above is a sample; here every command in the tree (found by walking it) that has --threads parses it
    the one way: a string, default auto, checked by cli.options (a number-only option is what issue 14 removed)."""
    import typer.main

    from tristudio.cli.options import _check_threads

    found = []
    for path, command in _leaf_commands(typer.main.get_command(app)):
        for param in command.params:
            if param.name == "threads":
                found.append(" ".join(path))
                assert param.default == "auto", (path, param.default)
                assert param.callback is not None and param.callback.__wrapped__ is _check_threads, path
    assert {"eval eg3d-acceptance", "renders make", "view", "sample"} <= set(found)
