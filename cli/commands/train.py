"""`tristudio train ...`: training commands (a thin layer over tristudio.core). `eg3d` lives here; the prior / CLIP
trainers add their own commands to this group."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from tristudio.cli.options import ckpt_every_option, resume_option, seed_option, threads_option
from tristudio.cli.resume import missing_option
from tristudio.core.threads import resolve_threads

app = typer.Typer(help="Train models: eg3d (tri-plane GAN from posed images).", no_args_is_help=True)


@app.command("eg3d")
def eg3d(
    ctx: typer.Context,
    data: Path = typer.Option(
        None, "--data", help="EG3D dataset folder or zip (dataset.json + images); --resume: the run's"
    ),
    preset: str = typer.Option("small", "--preset", help="tiny | small | medium | ffhq512 (must match the image size)"),
    out: Path = typer.Option(..., "--out", help="run folder: checkpoints, samples, log.jsonl, model/"),
    kimg: float = typer.Option(100.0, "--kimg", help="training length in thousands of real images"),
    batch: int = typer.Option(4, "--batch", help="global batch (split across torchrun processes)"),
    resume: bool = resume_option(),
    seed: int = seed_option(),
    glr: float = typer.Option(0.0025, "--glr", help="generator Adam learning rate"),
    dlr: float = typer.Option(0.002, "--dlr", help="discriminator Adam learning rate"),
    gamma: float = typer.Option(1.0, "--gamma", help="R1 weight"),
    r1_interval: int = typer.Option(16, "--r1-interval", help="lazy R1 every N steps"),
    density_reg: float = typer.Option(0.25, "--density-reg", help="density regularisation weight (0: off)"),
    density_reg_interval: int = typer.Option(4, "--density-reg-interval"),
    gpc_prob: float = typer.Option(0.5, "--gpc-prob", help="generator pose conditioning swap probability"),
    blur_fade_kimg: float = typer.Option(200.0, "--blur-fade-kimg", help="raw-image blur fade-in length (0: off)"),
    blur_sigma: float = typer.Option(10.0, "--blur-sigma", help="initial blur sigma in pixels (EG3D: 10)"),
    nrr: int = typer.Option(None, "--neural-res", help="neural rendering resolution (default: the preset's)"),
    nrr_final: int = typer.Option(None, "--neural-res-final", help="fade the neural resolution to this"),
    nrr_fade_start: float = typer.Option(
        None, "--neural-res-fade-start-kimg", help="two-stage: hold --neural-res until here, then fade"
    ),
    nrr_fade: float = typer.Option(None, "--neural-res-fade-kimg", help="length of the neural-resolution fade"),
    schedule: str = typer.Option(
        None, "--schedule", help="named schedule (core/eg3d/presets.py TRAIN_SCHEDULES, e.g. medium-two-stage)"
    ),
    depth_samples: int = typer.Option(None, "--depth-samples", help="coarse samples per ray"),
    importance_samples: int = typer.Option(None, "--importance-samples", help="importance samples per ray"),
    augment_p: float = typer.Option(0.0, "--augment-p", help="fixed ADA-style augmentation probability"),
    ada_target: float = typer.Option(None, "--ada-target", help="tune the augmentation probability (e.g. 0.6)"),
    ckpt_every: int = ckpt_every_option(50, "--snap"),
    sample_every: int = typer.Option(50, "--sample-every", help="sample grid every N steps"),
    keep: int = typer.Option(3, "--keep", help="checkpoints kept"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    threads: str = threads_option(),
) -> None:
    """Train an EG3D tri-plane GAN on posed images.

    For K processes: torchrun --nproc_per_node K tristudio train eg3d ..."""
    import contextlib

    from rich.console import Console

    from tristudio.cli.errors import at_least, clean_errors, esc, fail, finite, out_folder, positive
    from tristudio.core.eg3d.load import MAX_RAY_SAMPLES
    from tristudio.core.eg3d.train import TrainConfig, TrainingError, train
    from tristudio.core.io.run_checkpoints import latest_step
    from tristudio.core.io.runlock import run_lock

    positive(kimg, "--kimg", "training length")
    at_least(batch, 1, "--batch")
    for value, name in ((glr, "--glr"), (dlr, "--dlr")):
        positive(value, name, "learning rate")
    for value, name in ((gamma, "--gamma"), (density_reg, "--density-reg"), (blur_fade_kimg, "--blur-fade-kimg")):
        at_least(value, 0, name)
    at_least(blur_sigma, 0, "--blur-sigma")
    for value, name in ((r1_interval, "--r1-interval"), (density_reg_interval, "--density-reg-interval")):
        at_least(value, 1, name)
    if data is None:  # --resume fills it in from the run's command.json (cli/resume.py)
        raise missing_option("--data", "the EG3D dataset to train on", out, resume)
    for value, name in ((ckpt_every, "--ckpt-every"), (keep, "--keep")):
        at_least(value, 1, name)
    at_least(sample_every, 0, "--sample-every")
    for value, name in ((gpc_prob, "--gpc-prob"), (augment_p, "--augment-p"), (ada_target, "--ada-target")):
        if value is not None and not 0 <= finite(value, name) <= 1:
            raise typer.BadParameter(f"{value} is not a probability in [0, 1]", param_hint=name)
    for value, name in ((nrr, "--neural-res"), (nrr_final, "--neural-res-final")):
        if value is not None and not 8 <= value <= 512:
            raise typer.BadParameter(f"{value} is not a resolution in [8, 512]", param_hint=name)
    for value, name in ((nrr_fade_start, "--neural-res-fade-start-kimg"), (nrr_fade, "--neural-res-fade-kimg")):
        at_least(value, 0, name)
    for value, name in ((depth_samples, "--depth-samples"), (importance_samples, "--importance-samples")):
        if at_least(value, 1, name) is not None and value > MAX_RAY_SAMPLES:  # 100000 asked torch for 26 GB
            raise typer.BadParameter(
                f"{value} is above the maximum {MAX_RAY_SAMPLES} samples per ray (EG3D uses 48 + 48)", param_hint=name
            )
    out_folder(out)

    # loss key -> (the option's parameter name, its value)
    flags = {
        "r1_gamma": ("gamma", gamma),
        "r1_interval": ("r1_interval", r1_interval),
        "density_reg": ("density_reg", density_reg),
        "density_reg_interval": ("density_reg_interval", density_reg_interval),
        "gpc_reg_prob": ("gpc_prob", gpc_prob),
        "blur_fade_kimg": ("blur_fade_kimg", blur_fade_kimg),
        "blur_init_sigma": ("blur_sigma", blur_sigma),
    }
    loss = {k: v for k, (_, v) in flags.items()}
    if schedule:  # the schedule's values replace the flags' defaults; a flag given on the command line still wins
        from tristudio.core.eg3d.presets import TRAIN_SCHEDULES

        if schedule not in TRAIN_SCHEDULES:
            typer.echo(f"error: unknown --schedule {schedule!r}; choose one of {sorted(TRAIN_SCHEDULES)}", err=True)
            raise typer.Exit(2)
        loss.update(TRAIN_SCHEDULES[schedule])
        typed = [k for k, (name, _) in flags.items() if ctx.get_parameter_source(name).name != "DEFAULT"]
        loss.update({k: flags[k][1] for k in typed})
    if nrr_fade_start is not None:
        loss["neural_rendering_resolution_fade_start_kimg"] = nrr_fade_start
    if nrr_fade is not None:
        loss["neural_rendering_resolution_fade_kimg"] = nrr_fade
    if nrr:
        loss["neural_rendering_resolution_initial"] = nrr
    if nrr_final:
        loss["neural_rendering_resolution_final"] = nrr_final
    cfg = TrainConfig(
        data=str(data),
        out=str(out),
        preset=preset,
        kimg=kimg,
        batch=batch,
        seed=seed,
        glr=glr,
        dlr=dlr,
        augment_p=augment_p,
        ada_target=ada_target,
        depth_resolution=depth_samples,
        depth_resolution_importance=importance_samples,
        snap=ckpt_every,
        sample_every=sample_every,
        keep=keep,
        device=device,
        threads=resolve_threads(threads, processes=int(os.environ.get("WORLD_SIZE", "1"))),  # per process
        loss=loss,
    )
    console = Console(highlight=False)
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 holds the run folder's lock
    lock = run_lock(out, warn=lambda line: console.print(esc(line))) if main else contextlib.nullcontext()
    try:
        with clean_errors(), lock:
            done = latest_step(out) if resume else None
            if done is not None and done >= cfg.total_steps:  # a shorter --kimg than the run has trained
                if main:
                    console.print(f"{esc(out)} is at step {done} of {cfg.total_steps}: no step to take", soft_wrap=True)
            else:
                train(cfg, resume=resume, console=console)
    except TrainingError as exc:
        fail(str(exc))
