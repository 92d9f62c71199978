"""`tristudio renders make`: render sets, the training data of the small-world CLIP and prior.

The renders themselves are core/priors/renders.py's."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from tristudio.cli.options import image_side_option, threads_option
from tristudio.core.threads import apply_threads

app = typer.Typer(help="Make render sets (images + per-image shape/colour/material/pose) for the CLIP and the prior.")


class World(str, Enum):
    objects = "objects"
    heads = "heads"


@app.command("make")
def make(
    out: Path = typer.Option(..., "--out", help="render-set folder to write (renders.safetensors + renders.json)"),
    start: int = typer.Option(0, min=0, help="first seed"),
    count: int = typer.Option(..., min=1, help="number of renders (seeds START .. START+COUNT-1)"),
    resolution: int = image_side_option(64, "image side in pixels"),
    supersample: int = typer.Option(1, min=1, max=8, help="rays per pixel side (anti-aliasing)"),
    world: World = typer.Option(World.objects, help="objects (shape/colour/material, uniform orbit) or heads"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the render set (or other files) in --out"),
    threads: str = threads_option(),
) -> None:
    """Render one head or object per seed from one orbit camera per seed (backs of heads included)."""
    import time

    from rich.console import Console

    from tristudio.cli.errors import clean_errors, esc, fresh_folder, out_folder
    from tristudio.core.priors.renders import render_heads, render_objects

    out_folder(out)  # before the renders are made, not after
    fresh_folder(out, overwrite, "renders.json", "a render set")
    apply_threads(threads)
    t0 = time.time()
    render_fn = render_heads if world is World.heads else render_objects
    with clean_errors():
        rs = render_fn(range(start, start + count), resolution, supersample)
        rs.save(out)
    Console().print(
        f"rendered {count} {world.value} at {resolution}px (ss {supersample}) in {time.time() - t0:.0f} s -> {esc(out)}"
    )
