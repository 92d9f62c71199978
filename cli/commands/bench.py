"""`tristudio bench NAME`: run one benchmark from tristudio.core.bench, print its table, write its JSON."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import typer

from tristudio.cli.options import threads_option
from tristudio.core.threads import apply_threads

app = typer.Typer(help="Measure speed: prints a table and writes JSON (default bench/NAME.json).", no_args_is_help=True)


def _make_command(name: str):
    def command(
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
        quick: bool = typer.Option(False, help="fewer repeats and sizes (a smoke run)"),
        out: Path = typer.Option(None, help="JSON output path (default bench/<name>.json)"),
        threads: str = threads_option(),
    ) -> None:
        from tristudio.core.bench.common import report
        from tristudio.core.device import DeviceError, resolve_device

        apply_threads(threads)
        try:
            dev = resolve_device(device)
        except DeviceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        mod = importlib.import_module(f"tristudio.core.bench.{name}")
        rows = mod.run(device=str(dev), quick=quick)
        path = report(name, mod.TITLE, rows, dev, out or Path("bench") / f"{name}.json")
        typer.echo(f"wrote {path}")

    command.__doc__ = f"Benchmark: {name}."
    return command


def _register() -> None:
    from tristudio.core.bench import BENCHMARKS

    for name in BENCHMARKS:
        if importlib.util.find_spec(f"tristudio.core.bench.{name}") is not None:
            app.command(name=name)(_make_command(name))


_register()
