"""`tristudio fit SCENE --repr mlp|grid|triplane`: fit one procedural scene from posed reference renders.

Writes RUN_DIR/log.jsonl (one JSON record per log step / evaluation), RUN_DIR/checkpoints/ (tristudio's safetensors +
JSON checkpoint, atomic: field, Adam state, RNG states), RUN_DIR/eval.json (final held-out metrics) and
RUN_DIR/eval.png (rows: reference, prediction, reference depth, predicted depth, |depth error| x 10).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tristudio.cli.options import ckpt_every_option, config_from, resume_option, seed_option, threads_option
from tristudio.core.threads import apply_threads


def _check_repr(value: str) -> str:
    """--repr, checked while the options are parsed: its error comes before any other option's that depends on it."""
    from tristudio.core.fields import REPRESENTATIONS

    if value not in REPRESENTATIONS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(REPRESENTATIONS)}")
    return value


def fit(
    scene: str = typer.Argument(..., help="object:SEED | object:SHAPE/COLOR/MATERIAL | head:SEED"),
    representation: str = typer.Option("triplane", "--repr", help="mlp | grid | triplane", callback=_check_repr),
    views: int = typer.Option(24, help="number of training views"),
    steps: int = typer.Option(1000, help="optimisation steps"),
    out: Path = typer.Option(..., "--out", help="run folder (log.jsonl, checkpoints/, eval.json, eval.png)"),
    resolution: int = typer.Option(64, help="training and held-out image resolution"),
    test_views: int = typer.Option(4, help="held-out views (camera seeds disjoint from the training ones)"),
    rays: int = typer.Option(128, help="rays per step"),
    samples: int = typer.Option(16, help="stratified samples per ray (and as many importance samples)"),
    lr: float = typer.Option(None, help="network learning rate (default: per representation, see core/fitting)"),
    feature_lr: float = typer.Option(None, help="grid / plane feature learning rate"),
    field_resolution: int = typer.Option(None, help="grid / plane resolution R (default 128)"),
    channels: int = typer.Option(None, help="grid / plane channels C (default 8 grid, 32 tri-plane)"),
    log_every: int = typer.Option(25),
    eval_every: int = typer.Option(0, help="held-out evaluation every N steps (0: only at the end)"),
    ckpt_every: int = ckpt_every_option(500),
    resume: bool = resume_option(),
    threads: str = threads_option(),
    seed: int = seed_option(),
) -> None:
    """Fit a NeRF MLP, a dense feature grid or tri-planes to one procedural scene and evaluate it on held-out views."""
    options = dict(locals())  # the command's options by name (FitConfig takes those named like its fields)
    from PIL import Image

    from tristudio.cli.errors import at_least, clean_errors, out_folder, positive
    from tristudio.core.fitting.evaluate import to_uint8_grid
    from tristudio.core.fitting.loop import FitConfig
    from tristudio.core.fitting.loop import fit as run_fit
    from tristudio.core.fitting.views import parse_scene, render_views
    from tristudio.core.io.atomic import atomic_path, atomic_write_text
    from tristudio.core.io.runlock import run_lock

    try:
        spec = parse_scene(scene)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SCENE") from None
    for value, low, name in (
        (views, 1, "--views"),
        (steps, 1, "--steps"),
        (resolution, 4, "--resolution"),
        (test_views, 1, "--test-views"),
        (rays, 1, "--rays"),
        (samples, 1, "--samples"),
        (field_resolution, 2, "--field-resolution"),
        (channels, 1, "--channels"),
        (log_every, 1, "--log-every"),
        (eval_every, 0, "--eval-every"),
        (ckpt_every, 0, "--ckpt-every"),
    ):
        at_least(value, low, name)
    for value, name in ((lr, "--lr"), (feature_lr, "--feature-lr")):
        positive(value, name, "learning rate")
    out_folder(out)
    apply_threads(threads)
    field_kw = {}
    if representation in ("grid", "triplane"):
        if field_resolution is not None:
            field_kw["resolution"] = field_resolution
        if channels is not None:
            field_kw["channels"] = channels
    elif field_resolution is not None or channels is not None:
        name = "--channels" if channels is not None else "--field-resolution"
        raise typer.BadParameter(f"applies to --repr grid and triplane only, not {representation}", param_hint=name)
    try:
        config = config_from(
            FitConfig,
            options,
            rays_per_step=rays,
            depth_resolution=samples,
            depth_resolution_importance=samples,
            field=field_kw,
        )
        train = render_views(spec, views, resolution)
        test = render_views(spec, test_views, resolution, held_out=True)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{scene}: {views} training views, {test_views} held-out, {resolution}^2; {representation}")
    with clean_errors(), run_lock(out, warn=typer.echo):
        fitter, final = run_fit(
            config,
            train,
            test,
            out,
            log_every=log_every,
            eval_every=eval_every,
            ckpt_every=ckpt_every,
            resume=resume,
            echo=typer.echo,
        )
    metrics = {k: v for k, v in final.items() if k != "images"}
    summary = {
        "scene": scene,
        "representation": representation,
        "steps": fitter.step_count,
        "train_time_s": fitter.train_time,
        "train_cpu_s": fitter.train_cpu,
        "n_parameters": fitter.n_parameters,
        **metrics,
    }
    atomic_write_text(out / "eval.json", json.dumps(summary, indent=2))
    img = final["images"]
    mask = test.mask
    lo, hi = test.depth[mask].min().item() - 0.05, test.depth[mask].max().item() + 0.05

    def grey(d):  # depth image -> (n, h, w, 3) in [0, 1], near = bright; black where the reference misses
        g = ((hi - d) / (hi - lo)).clamp(0, 1) * mask
        return g[..., None].expand(*g.shape, 3)

    err = ((img["depth"] - test.depth).abs() * 10).nan_to_num(0.0).clamp(0, 1) * mask
    err_rgb = err[..., None].expand(-1, -1, -1, 3)
    grid = to_uint8_grid([test.rgb, img["rgb"], grey(test.depth), grey(img["depth"]), err_rgb])
    with atomic_path(out / "eval.png") as tmp:
        Image.fromarray(grid.numpy()).save(tmp, format="PNG")
    typer.echo(
        f"held-out PSNR {metrics['psnr']:.2f} dB, depth MAE {metrics['depth_mae']:.4f} (box side 1); "
        f"{fitter.n_parameters:,} parameters, {fitter.train_time:.1f} s training -> {out}"
    )
