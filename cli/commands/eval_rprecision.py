"""`tristudio eval rprecision`: CLIP R-Precision of a folder of renders against a prompt set (DreamFusion's metric)."""

from __future__ import annotations

from pathlib import Path

import typer

from tristudio.cli.options import clip_option

app = typer.Typer()


@app.command("rprecision")
def rprecision(
    clip: Path = clip_option(),
    renders: Path = typer.Option(..., help="folder of PNG renders with captions.json (relative path -> prompt)"),
    prompts: Path = typer.Option(..., help="text file: the prompt set, one prompt per line"),
    key: str = typer.Option("caption", help="captions.json entry to use when entries are dicts (e.g. caption_view)"),
    k: int = typer.Option(1, min=1, help="R-Precision at k"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
) -> None:
    """Retrieve each render's prompt among the prompt set with CLIP; print R-Precision@k."""
    from rich.console import Console

    from tristudio.cli.errors import clean_errors, esc
    from tristudio.core.io.progress import quiet_loader_bars

    console = Console()
    quiet_loader_bars()
    with clean_errors():
        from tristudio.core.priors import load_clip
        from tristudio.core.priors.rprecision import clip_r_precision, read_render_set

        if clip is None:
            from tristudio.core.io.assets import shipped_clip_path

            clip = shipped_clip_path()
        model = load_clip(clip, device=device)
        images, index, prompt_set, _ = read_render_set(renders, prompts, key)
        score = clip_r_precision(model, images.to(model.device), index, prompt_set, k=k)
    console.print(
        f"CLIP R-Precision@{k}: {score:.3f} ({len(images)} renders, {len(prompt_set)} prompts, CLIP {esc(clip)})"
    )
