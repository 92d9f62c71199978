"""`tristudio eval eg3d-acceptance | prior-acceptance | dreamfusion-acceptance`: the measurements behind the README's
tables. Each prints its report and writes it under OUT; the measurements themselves live in core/eg3d/acceptance.py,
core/priors/acceptance.py and core/dreamfusion/acceptance.py.
"""

from __future__ import annotations

from pathlib import Path

import typer

from tristudio.cli.commands.evaluate import print_report
from tristudio.cli.errors import clean_errors, out_folder, positive
from tristudio.cli.options import clip_option, image_side_option, prior_option, seed_option, threads_option
from tristudio.core.threads import apply_threads

app = typer.Typer()
_NOTHING_MEASURED = "nothing was measured for it"


@app.command("eg3d-acceptance")
def eg3d_acceptance(
    model: Path = typer.Option(..., "--model", help="a tristudio model folder or an EG3D pickle"),
    train: Path = typer.Option(..., help="the training dataset (for the PCA baseline and the floor)"),
    held_out: Path = typer.Option(..., help="a dataset of renders never trained on"),
    out: Path = typer.Option(..., help="folder for acceptance.json and yaw_grid.png"),
    num: int = typer.Option(1000, min=2, help="generated images per FID-sw / KID-sw"),
    pca_k: int = typer.Option(64, min=1, help="components of the PCA-Gaussian no-3D baseline"),
    world: str = typer.Option(None, help="heads | heads2: also ID-sw, pose error and floaters for this world"),
    threads: str = threads_option(),
) -> None:
    """FID-sw / KID-sw of an EG3D model against held-out renders, with baselines, floor and consistency.

    Beside the model: a random-init model, a no-3D PCA baseline and the two-sample floor; then multi-view consistency
    and a yaw grid."""
    from tristudio.core.eg3d.acceptance import evaluate_model
    from tristudio.core.eg3d.load import LOAD_ERRORS, load_generator
    from tristudio.core.metrics.features import open_dataset

    if world not in (None, "heads", "heads2"):
        raise typer.BadParameter(f"{world!r} is not a heads world (heads | heads2)", param_hint="--world")
    out_folder(out)
    apply_threads(threads)
    with clean_errors(*LOAD_ERRORS):
        load_generator(model)  # before anything is measured: the model loads, the datasets pass `train eg3d`'s check
        for data in (train, held_out):
            open_dataset(data)
        evaluate_model(model, train, held_out, out, num, pca_k, world=world)


@app.command("prior-acceptance")
def prior_acceptance(
    prior: Path = prior_option(),
    clip: Path = clip_option(),
    per_prompt: int = typer.Option(1, min=1, help="samples per prompt"),
    steps: int = typer.Option(50, min=1, help="DDIM steps"),
    guidance: float = typer.Option(None, help="CFG scale (default: the prior's own)"),
    seed: int = seed_option("sampling seed"),
    eta: float = typer.Option(1.0, min=0.0, max=1.0, help="DDIM eta (1: DDPM-like stochastic steps, 0: DDIM)"),
    pair_stride: int = typer.Option(1, min=1, help="sample every k-th shape x colour pair (+ held-out)"),
    view_pairs: int = typer.Option(None, min=1, help="shape x colour pairs for the view test (default: all)"),
    renders: Path = typer.Option(None, help="held-out render-set folder: also report the CLIP's view accuracy on it"),
    out: Path = typer.Option(None, help="write acceptance.json and the sample grids here"),
    threads: str = threads_option(),
) -> None:
    """Text-image agreement of prior samples, judged by a CLIP: shape + colour, view words, heads (top-1 retrieval)."""
    from tristudio.core.io.atomic import atomic_write_text
    from tristudio.core.io.progress import quiet_loader_bars
    from tristudio.core.priors import load_clip, load_prior
    from tristudio.core.priors.acceptance import VIEW_PAIRS, evaluate_prior, holdout_pairs_of

    quiet_loader_bars()  # no 'Loading weights' bars above the report
    positive(guidance, "--guidance", "scale")
    if out:
        out_folder(out)
    apply_threads(threads)
    with clean_errors():
        from tristudio.core.io.assets import shipped_clip_path, shipped_prior_path

        prior, clip = prior or shipped_prior_path(), clip or shipped_clip_path()
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
        text = print_report(report, _NOTHING_MEASURED, indent=2)
        if out:
            atomic_write_text(Path(out) / "acceptance.json", text + "\n")


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", ",").split(",") if v]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of steps", param_hint=name) from None
    if not values or min(values) < 1 or values != sorted(values):
        raise typer.BadParameter(f"{text!r}: give increasing step counts >= 1, e.g. 300,1000,2000", param_hint=name)
    return values


@app.command("dreamfusion-acceptance")
def dreamfusion_acceptance(
    ctx: typer.Context,
    prior: Path = prior_option(),
    clip: Path = clip_option(),
    methods: str = typer.Option("sds,csd,vsd", help="comma-separated guidance methods"),
    steps: int = typer.Option(300, min=1, help="steps per prompt"),
    resolution: int = image_side_option(None, "training render size (default: the prior's)"),
    objects: int = typer.Option(None, min=1, help="evaluate the first N held-out object prompts"),
    heads: int = typer.Option(None, min=0, help="evaluate the first N head prompts"),
    marks: str = typer.Option(None, help="stability: one run per prompt measured at these steps, e.g. 300,1000,2000"),
    first_object: int = typer.Option(0, min=0, help="stability: start at this held-out prompt"),
    out: Path = typer.Option(Path("runs/dreamfusion_eval"), help="output folder"),
    threads: str = threads_option(),
) -> None:
    """DreamFusion in the small world: CLIP R-Precision, mesh chamfer and the Janus test per method.

    On held-out prompts; the chamfer is to the named primitive. With --marks, whether one run stays converged from the
    first mark to the last."""
    from tristudio.core.dreamfusion.acceptance import (
        HEAD_PROMPTS,
        HOLDOUT_PROMPTS,
        evaluate,
        evaluate_over_steps,
    )
    from tristudio.core.dreamfusion.methods import METHODS
    from tristudio.core.io.assets import shipped_clip_path, shipped_prior_path
    from tristudio.core.io.progress import quiet_loader_bars
    from tristudio.core.priors import load_clip, load_prior

    quiet_loader_bars()  # no 'Loading weights' bars above the report

    method_list = [m for m in methods.replace(" ", ",").split(",") if m]
    unknown = [m for m in method_list if m not in METHODS]
    if not method_list or unknown:
        raise typer.BadParameter(f"unknown method(s) {unknown or methods!r}; choose from {', '.join(METHODS)}")
    mark_list = _int_list(marks, "--marks") if marks else None
    if mark_list:
        if ctx.get_parameter_source("steps").name == "COMMANDLINE":
            raise typer.BadParameter("with --marks, the runs go to the last mark", param_hint="--steps")
        prompts = HOLDOUT_PROMPTS[first_object : (first_object + objects) if objects else None]
        if not prompts:
            raise typer.BadParameter(
                f"{first_object}: there are {len(HOLDOUT_PROMPTS)} held-out prompts", param_hint="--first-object"
            )
    out_folder(out)
    apply_threads(threads)
    with clean_errors():
        prior_model = load_prior(prior or shipped_prior_path(), "cpu")
        clip_model = load_clip(clip or shipped_clip_path(), "cpu")
        if mark_list:
            overrides = {"resolution": resolution} if resolution else {}
            for method in method_list:
                res = evaluate_over_steps(prior_model, clip_model, out, mark_list, method, prompts, **overrides)
                report = {"method": method, "summary": res["summary"], "stable": res["stable"]}
                print_report(report, _NOTHING_MEASURED, indent=2)
            return
        res = evaluate(
            prior_model,
            clip_model,
            out,
            method_list,
            steps,
            resolution,
            HOLDOUT_PROMPTS[:objects],
            HEAD_PROMPTS[:heads] if heads is not None else HEAD_PROMPTS,
        )
        print_report({k: v for k, v in res.items() if k != "runs"}, _NOTHING_MEASURED, indent=2)
