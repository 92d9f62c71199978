"""`tristudio eval rprecision`: CLIP R-Precision (DreamFusion's metric) of a folder of renders against a prompt set, or
of DreamFusion runs, each rendered from an orbit and retrieved among the runs' prompts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from tristudio.cli.options import clip_option

app = typer.Typer()


@app.command("rprecision")
def rprecision(
    clip: Path = clip_option(),
    renders: Path = typer.Option(None, help="folder of PNG renders with captions.json (relative path -> prompt)"),
    prompts: Path = typer.Option(
        None,
        help="text file: the prompt set, one prompt per line, a repeated line counted once (with --runs, default: "
        "the runs' prompts)",
    ),
    runs: list[Path] = typer.Option(
        None, "--runs", help="DreamFusion run folder(s), instead of --renders: each run's views, retrieved"
    ),
    views: int = typer.Option(
        8, min=1, max=360, help="with --runs: views per run, evenly spaced in azimuth from the front"
    ),
    resolution: int = typer.Option(64, min=8, max=512, help="with --runs: view size in pixels"),
    out: Path = typer.Option(
        None, help="with --runs: also write the views there as --renders reads them (PNGs, captions.json, prompts.txt)"
    ),
    key: str = typer.Option("caption", help="captions.json entry to use when entries are dicts (e.g. caption_view)"),
    k: int = typer.Option(1, min=1, help="R-Precision at k"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
) -> None:
    """Retrieve each render's prompt among the prompt set with CLIP; print R-Precision@k.

    The renders are a folder (--renders, --prompts) or DreamFusion runs (--runs RUN --runs RUN2 ...: each run's latest
    checkpoint, lambertian-shaded from --views cameras at 15 deg elevation, with the prior it was made with).
    """
    from rich.console import Console

    from tristudio.cli.errors import clean_errors, esc, out_folder
    from tristudio.core.io.progress import quiet_loader_bars

    if (renders is None) == (not runs):
        raise typer.BadParameter(
            "name the renders: --renders DIR (with --prompts) or --runs RUN ...", param_hint="--renders"
        )
    if renders is not None and prompts is None:
        raise typer.BadParameter("--renders needs the prompt set they are retrieved among", param_hint="--prompts")
    named = [Path(os.path.abspath(r)) for r in runs or []]
    if len(set(named)) < len(named):
        twice = next(r for r in named if named.count(r) > 1)
        raise typer.BadParameter(f"{twice} is named twice: each run counts once", param_hint="--runs")
    if out is not None:
        if not runs:
            raise typer.BadParameter(
                "--out writes the views of --runs; --renders are already a folder", param_hint="--out"
            )
        _check_views_out(out_folder(out))
    console = Console()
    quiet_loader_bars()
    with clean_errors():
        from tristudio.core.priors import load_clip
        from tristudio.core.priors.rprecision import clip_r_precision, read_render_set

        if clip is None:
            from tristudio.core.io.assets import shipped_clip_path

            clip = shipped_clip_path()
        model = load_clip(clip, device=device)
        if runs:
            images, index, prompt_set = _run_renders(runs, prompts, views, resolution, out, device, console)
        else:
            images, index, prompt_set, _ = read_render_set(renders, prompts, key)
        score = clip_r_precision(model, images.to(model.device), index, prompt_set, k=k)
    console.print(
        f"CLIP R-Precision@{k}: {score:.3f} ({len(images)} renders, {len(prompt_set)} prompts, CLIP {esc(clip)})"
    )


# --out's layout: NN-RUNNAME/viewNN.png per view (NN: the run's place in --runs, the view's in its orbit), plus
# captions.json (each view's prompt) and prompts.txt
_VIEW = re.compile(r"\d{2,}-[^/]+/view\d{2,}\.png")


def _view_name(run: int, folder: Path, view: int) -> str:
    return f"{run:02d}-{folder.name}/view{view:02d}.png"


def _ours(out: Path) -> list[Path] | None:
    """The view folders of an earlier --out of this command (captions.json naming only views, prompts.txt and
    NN-RUN/ folders of viewNN.png, nothing else), or None when the folder holds anything else."""
    import json

    try:
        captions = json.loads((out / "captions.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(captions, dict) or not (out / "prompts.txt").is_file():
        return None
    if not all(_VIEW.fullmatch(k) for k in captions):
        return None
    folders = [
        p for p in out.iterdir() if not p.name.startswith(".") and p.name not in ("captions.json", "prompts.txt")
    ]
    for p in folders:
        if not p.is_dir() or not all(_VIEW.fullmatch(f"{p.name}/{f.name}") and f.is_file() for f in p.iterdir()):
            return None
    return folders


def _check_views_out(out: Path) -> None:
    """--out is new, empty, or an earlier --out of this command (its stale views are removed before writing): a
    user's files are never overwritten."""
    if out.is_dir() and any(out.iterdir()) and _ours(out) is None:
        raise typer.BadParameter(
            f"{out} holds other files: name a new or empty folder for the views", param_hint="--out"
        )


def _run_renders(runs, prompts, views, resolution, out, device, console):
    """(images (N, 3, R, R), prompt index per image, prompt set) of the runs' views; written to `out` if given."""
    from tristudio.cli.errors import esc
    from tristudio.core.dreamfusion.runs import run_views
    from tristudio.core.priors.rprecision import read_prompt_set, write_render_set

    given = read_prompt_set(prompts) if prompts is not None else None  # (a bad file: named before any render)
    images, image_prompts = run_views(
        runs, views, resolution, device=device, warn=lambda line: console.print(esc(line), soft_wrap=True)
    )
    prompt_set = given or list(dict.fromkeys(image_prompts))
    missing = [p for p in dict.fromkeys(image_prompts) if p not in prompt_set]
    if missing:
        raise ValueError(f"the runs' prompts {missing} are not in {prompts}")
    if len(prompt_set) < 2:
        raise ValueError(
            f"one prompt ({prompt_set[0]!r}): R-Precision retrieves among 2 or more (more --runs, or --prompts)"
        )
    if out is not None:
        import shutil

        for stale in _ours(out) if out.is_dir() else []:  # an earlier --out's views (checked before: ours alone)
            shutil.rmtree(stale)
        names = [_view_name(i // views, Path(runs[i // views]), i % views) for i in range(len(images))]
        write_render_set(out, images, image_prompts, names)
        console.print(f"views: {esc(out)}", soft_wrap=True)
    return images, [prompt_set.index(p) for p in image_prompts], prompt_set
