"""The GUI rows of `tristudio bench viewer` run as hidden `tristudio bench` commands in subprocesses
(core/bench/viewer.py reads their last JSON line): they must always print one JSON line, the error included, and stay
out of the help."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tristudio.cli.app import app


def test_gui_bench_rows_without_a_display_print_one_json_error_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    for command in ("orbit-frames", "train-frames"):
        result = CliRunner().invoke(app, ["bench", command, "--seconds", "1"])
        assert result.exit_code == 0, result.output
        lines = [ln for ln in result.output.splitlines() if ln.startswith("{")]
        assert len(lines) == 1, result.output
        assert "DISPLAY" in json.loads(lines[0])["error"]


def test_gui_bench_rows_are_hidden_from_the_help():
    out = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"}).output
    assert "viewer" in out
    for hidden in ("gl-frames", "orbit-frames", "train-frames"):
        assert hidden not in out
