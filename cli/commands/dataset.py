"""`tristudio dataset make|check`: render a procedural world into an EG3D dataset; check a dataset."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(
    help="Make (from the procedural worlds) and check EG3D-format datasets: PNGs + dataset.json, folder or zip.",
    no_args_is_help=True,
)


class Cameras(str, Enum):
    ffhq = "ffhq"
    rebalanced = "rebalanced"


class World(str, Enum):
    heads = "heads"
    heads2 = "heads2"
    objects = "objects"


@app.command()
def make(
    world: World = typer.Option(
        ...,
        help="heads (v1, the shipped model's world), heads2 (v2: richer identities, centred, identity parameters in "
        "captions.json) or objects (uniform orbits, captioned)",
    ),
    count: int = typer.Option(..., min=1, help="number of images"),
    resolution: int = typer.Option(64, min=4, help="image size in pixels (square)"),
    out: Path = typer.Option(..., help="output folder, or a .zip file"),
    seed: int = typer.Option(0, help="dataset seed (item i uses seeds derived from (seed, i))"),
    supersample: int = typer.Option(2, min=1, help="anti-aliasing: s x s sub-pixel rays at edges"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replace --out even when it holds files that are not a tristudio dataset"
    ),
    cameras: Cameras = typer.Option(
        "ffhq", help="heads worlds: ffhq (EG3D's FFHQ spread) or rebalanced (half the views at uniform |yaw| <= 80)"
    ),
    ground_truth: bool = typer.Option(
        False, "--ground-truth", help="also store gt/<image>.npz: depth, normals, mask of every render"
    ),
) -> None:
    """Render a dataset. Interrupted? Rerun the same command: finished chunks are kept (see core/data/make.py)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from tristudio.cli.errors import clean_errors
    from tristudio.core.data.make import DatasetSpec, check_output, make_dataset
    from tristudio.core.io.runlock import run_lock

    if cameras.value != "ffhq" and world.value == "objects":
        typer.echo(f"error: --cameras {cameras.value} applies to the heads worlds only", err=True)
        raise typer.Exit(2)
    out = Path(os.path.abspath(out))  # `--out .` names the folder (its lock and work folder sit beside it)
    with clean_errors():
        check_output(out, overwrite)  # before anything is rendered
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with run_lock(out, lock=out.parent / f".{out.name}.lock"), Progress(*columns) as bar:
            task = bar.add_task(f"{world.value} {resolution}px", total=count)
            spec = DatasetSpec(
                world.value, count, resolution, seed, supersample, cameras=cameras.value, ground_truth=ground_truth
            )
            make_dataset(spec, out, lambda done, total: bar.update(task, completed=done), overwrite, bar.console.print)
    typer.echo(f"wrote {out}")


@app.command()
def check(path: Path = typer.Argument(..., help="dataset folder or zip")) -> None:
    """Check a dataset: one line per problem, then a summary. Exit code 1 if there are problems."""
    from tristudio.cli.errors import clean_errors
    from tristudio.core.data.check import check_dataset

    with clean_errors():
        report = check_dataset(path)
    typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(code=1)
