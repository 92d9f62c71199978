"""`tristudio bench NAME`: run one benchmark from tristudio.core.bench, print its table, write its JSON."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import typer

from tristudio.cli.options import threads_option
from tristudio.core.threads import apply_threads

app = typer.Typer(help="Measure speed: prints a table and writes JSON (default bench/NAME.json).", no_args_is_help=True)


def _bench_of(path: Path) -> str | None:
    """The benchmark whose JSON the file is ({"benchmark": NAME, "rows": [...]}), else None."""
    import json

    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("benchmark"), str)
        and isinstance(payload.get("rows"), list)
    ):
        return payload["benchmark"]
    return None


def _check_out(out: Path, name: str) -> None:
    """The JSON's path: a file that is not benchmark `name`'s own JSON is never replaced (checked before the
    measurement and again before the write: it may have appeared meanwhile)."""
    from tristudio.cli.errors import out_folder

    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give the JSON file's path", param_hint="--out")
    held = _bench_of(out) if out.is_file() else name
    if held != name:
        what = f"`bench {held}`'s JSON" if held else "not a benchmark's JSON"
        raise typer.BadParameter(
            f"{out} exists and is {what}; it is left as it is: choose another path", param_hint="--out"
        )
    out_folder(out.parent, "--out")


def _make_command(name: str):
    def command(
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
        quick: bool = typer.Option(False, help="fewer repeats and sizes (a smoke run)"),
        out: Path = typer.Option(
            None, help="JSON output path (default bench/<name>.json; only this benchmark's own JSON is ever replaced)"
        ),
        threads: str = threads_option(),
    ) -> None:
        from tristudio.cli.errors import clean_errors
        from tristudio.core.bench.common import report
        from tristudio.core.device import DeviceError, resolve_device

        out = out or Path("bench") / f"{name}.json"
        _check_out(out, name)
        apply_threads(threads)
        try:
            dev = resolve_device(device)
        except DeviceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        mod = importlib.import_module(f"tristudio.core.bench.{name}")
        rows = mod.run(device=str(dev), quick=quick)
        _check_out(out, name)
        with clean_errors():
            path = report(name, mod.TITLE, rows, dev, out)
        typer.echo(f"wrote {path}")

    command.__doc__ = f"Benchmark: {name}."
    return command


def _register() -> None:
    from tristudio.core.bench import BENCHMARKS

    for name in BENCHMARKS:
        app.command(name=name)(_make_command(name))


_register()


# Internal: the GUI rows of `bench viewer`, each run in its own process (core/ never imports GL or the GUI). They print
# one JSON line; an error is a JSON line too ({"error": ...}), which the row shows.
def _print_json(measure, **kwargs) -> None:
    try:
        result = measure(**kwargs)
    except Exception as exc:  # the bench row says why (no display, no GL)
        result = {"error": f"failed: {exc}"}
    typer.echo(json.dumps(result))


@app.command("gl-frames", hidden=True)
def gl_frames(preset: str = "small", grid: int = 96, size: int = 256, frames: int = 30) -> None:
    """GL ray-march of a baked grid in a hidden window (viewer.glbench)."""
    from tristudio.viewer.glbench import measure

    _print_json(measure, preset=preset, grid=grid, size=size, frames=frames)


@app.command("orbit-frames", hidden=True)
def orbit_frames(
    model: str = "auto",
    seconds: float = typer.Option(6.0, help="length of the orbiting phase"),
    size: str = "1100x720",
    stops: int = 5,
    timeout: float = typer.Option(300.0, help="longest wait for the grid bake"),
) -> None:
    """The real app orbiting an EG3D model (viewer.orbitbench)."""
    from tristudio.viewer.orbitbench import measure

    _print_json(measure, model=model, seconds=seconds, size=size, stops=stops, timeout=timeout)


@app.command("train-frames", hidden=True)
def train_frames(
    prior: str = "auto",
    seconds: float = typer.Option(8.0, help="length of the training phase (idle, orbit: half)"),
    size: str = "1100x720",
    guidance: str = "sds",
    timeout: float = typer.Option(300.0, help="longest wait for the first step"),
) -> None:
    """The real app while DreamFusion trains (viewer.trainbench)."""
    from tristudio.viewer.trainbench import measure

    _print_json(measure, prior=prior, seconds=seconds, size=size, guidance=guidance, timeout=timeout)
