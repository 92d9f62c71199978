"""`tristudio eval eg3d-acceptance | prior-acceptance`: the acceptance measurements behind the README's tables.

Each writes OUT/acceptance.json (and the grids it names) and prints the report; the measurements themselves live in
core/eg3d/evaluate.py and core/priors/evaluate.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer()


def _threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


@app.command("eg3d-acceptance")
def eg3d_acceptance(
    model: Path = typer.Argument(..., help="a tristudio model folder or an EG3D pickle"),
    train: Path = typer.Option(..., help="the training dataset (for the PCA baseline and the floor)"),
    held_out: Path = typer.Option(..., help="a dataset of renders never trained on"),
    out: Path = typer.Option(..., help="folder for acceptance.json and yaw_grid.png"),
    num: int = typer.Option(1000, min=2, help="generated images per FID-sw / KID-sw"),
    pca_k: int = typer.Option(64, min=1, help="components of the PCA-Gaussian no-3D baseline"),
    world: str = typer.Option(None, help="heads | heads2: also ID-sw, pose error and floaters for this world"),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0 = torch's default)"),
) -> None:
    """FID-sw / KID-sw of an EG3D model against held-out renders, beside a random-init model, a no-3D PCA baseline and
    the two-sample floor; multi-view consistency; a yaw grid."""
    from tristudio.core.eg3d.evaluate import evaluate_model

    _threads(threads)
    if world not in (None, "heads", "heads2"):
        raise typer.BadParameter(f"{world!r} is not a heads world (heads | heads2)", param_hint="--world")
    evaluate_model(str(model), str(train), str(held_out), str(out), num, pca_k, world=world)


@app.command("prior-acceptance")
def prior_acceptance(
    prior: Path = typer.Argument(..., help="the prior folder (diffusers layout)"),
    clip: Path = typer.Argument(..., help="the CLIP folder that judges the samples"),
    per_prompt: int = typer.Option(1, min=1, help="samples per prompt"),
    steps: int = typer.Option(50, min=1, help="DDIM steps"),
    guidance: float = typer.Option(None, help="CFG scale (default: the prior's own)"),
    seed: int = typer.Option(0),
    eta: float = typer.Option(1.0, min=0.0, max=1.0, help="DDIM eta (1: DDPM-like stochastic steps, 0: DDIM)"),
    pair_stride: int = typer.Option(1, min=1, help="sample every k-th shape x colour pair (+ held-out)"),
    view_pairs: int = typer.Option(None, min=1, help="shape x colour pairs for the view test (default: all)"),
    renders: Path = typer.Option(None, help="held-out render-set folder: also report the CLIP's view accuracy on it"),
    out: Path = typer.Option(None, help="write acceptance.json and the sample grids here"),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0 = torch's default)"),
) -> None:
    """Text-image agreement of prior samples, judged by a CLIP: shape + colour, view words, heads (top-1 retrieval)."""
    from tristudio.core.priors import load_clip, load_prior
    from tristudio.core.priors.evaluate import VIEW_PAIRS, evaluate_prior, holdout_pairs_of

    _threads(threads)
    prior_model = load_prior(prior, device="cpu")
    clip_model = load_clip(clip, device="cpu")
    report = evaluate_prior(
        prior_model,
        clip_model,
        per_prompt,
        steps,
        guidance,
        seed,
        VIEW_PAIRS[:view_pairs] if view_pairs else VIEW_PAIRS,
        holdout_pairs_of(prior),
        out,
        pair_stride,
        eta=eta,
    )
    if renders:
        from tristudio.core.priors.renders import load_render_sets
        from tristudio.core.priors.train_clip import retrieval_report

        report["clip_on_renders"] = retrieval_report(clip_model, load_render_sets([renders]))
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        (Path(out) / "acceptance.json").write_text(text + "\n")
