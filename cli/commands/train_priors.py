"""`tristudio train clip` / `tristudio train prior`: train the small-world CLIP and text-to-image prior on captioned
renders of the objects world (resumable: checkpoints in OUT/checkpoints, --resume continues from the last one).

Renders: `tristudio renders make --out OUT --start START --count COUNT [--resolution RES]` writes a render-set folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from tristudio.cli.options import ckpt_every_option, config_from, resume_option, seed_option, threads_option
from tristudio.cli.resume import missing_option
from tristudio.core.threads import apply_threads

app = typer.Typer(help="Train models.", no_args_is_help=True)

# The options `train clip` and `train prior` share (one definition, one help text).
_DATA = typer.Option(None, "--data", help="render-set folder(s) to train on")
_LR = typer.Option(1e-3, help="peak learning rate (AdamW, warm-up + cosine)")
_CKPT_EVERY = ckpt_every_option(100)


def _progress(total: int, start: int, every: int):
    """A rich progress bar plus a logged line every `every` steps (readable in a nohup log). The bar shows from the
    first record on, so an error while the data or models load is not printed under an empty bar; stop() it."""
    from rich.console import Console
    from rich.progress import TextColumn

    from tristudio.core.io.progress import step_progress

    console = Console()
    progress = step_progress(console, TextColumn("{task.fields[info]}"))
    task = progress.add_task("train", total=total, completed=start, first=start, info="")

    def callback(record: dict) -> None:
        progress.start()  # (a no-op once started)
        if "eval" in record:
            console.log(
                f"step {record['step']}: "
                + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in record["eval"].items())
            )
            return
        info = f"loss {record['loss']:.4f} lr {record['lr']:.2e}"
        progress.update(task, completed=record["step"], info=info)
        if record["step"] % every == 0:
            console.log(f"step {record['step']}: {info}")

    return progress, callback


def _resume_point(work: Path, kind: str, resume: bool, steps: int | None, default: int) -> tuple[int, int]:
    """(step to start the progress bar at, total steps). A resumed run keeps its own total (and so its learning-rate
    schedule) unless --steps names a new one; a fresh run takes --steps or the default."""
    import json

    if not resume:
        return 0, steps or default
    from tristudio.core.io.run_checkpoints import latest_step

    start, total = latest_step(work) or 0, steps
    if total is None and (work / "config.json").exists():
        try:
            total = json.loads((work / "config.json").read_text())[kind]["steps"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{work / 'config.json'} is not a `train {kind}` configuration") from None
    return start, total or default


def _check_common(options: dict) -> None:
    """The checks `train clip` and `train prior` share: one typer.BadParameter line naming the option."""
    from tristudio.cli.errors import at_least, out_folder, positive

    work, data, resume, lr = options["work"], options["data"], options["resume"], options["lr"]
    out_folder(work)
    if not resume and not data:
        raise typer.BadParameter("no training data: pass render-set folder(s)", param_hint="--data")
    for d in data or []:
        if not (d / "renders.json").is_file():
            raise typer.BadParameter(
                f"{d} is not a render-set folder (no renders.json; make one with tristudio renders make)",
                param_hint="--data",
            )
    at_least(options["steps"], 1, "--steps")
    at_least(options["batch"], 1, "--batch")
    positive(lr, "--lr", "learning rate")
    at_least(options["ckpt_every"], 1, "--ckpt-every")


def _train(kind: str, options: dict, config_cls, default_steps: int, train, **fields):
    """What `train clip` and `train prior` do once their own options are checked: check the options they share
    (_check_common), lock --out, settle the step count (_resume_point), build the config from the options
    (config_from) and call `train(cfg, steps, callback)` under a progress bar; `steps` is --steps when resuming (a new
    total), else None. Returns what `train` returns."""
    from tristudio.cli.errors import clean_errors
    from tristudio.core.io.progress import quiet_loader_bars
    from tristudio.core.io.runlock import run_lock

    _check_common(options)
    quiet_loader_bars()  # no 'Loading weights' / 'Writing model shards' bars beside the training bar
    work, resume = options["work"], options["resume"]
    apply_threads(options["threads"])
    with clean_errors(), run_lock(work, warn=typer.echo):
        start, steps = _resume_point(work, kind, resume, options["steps"], default_steps)
        cfg = config_from(config_cls, options, batch_size=options["batch"], steps=steps, **fields)
        progress, callback = _progress(steps, start, 50)
        try:
            return train(cfg, options["steps"] if resume else None, callback)
        finally:
            progress.stop()


@app.command("clip")
def clip(
    work: Path = typer.Option(..., "--out", help="run folder (config.json, checkpoints/, log.jsonl, export/)"),
    data: list[Path] = _DATA,
    held_out: Path = typer.Option(None, help="render-set folder for the retrieval report"),
    eval_every: int = typer.Option(250, help="export + retrieval report every N steps"),
    steps: int = typer.Option(None, help="total steps [default: 1500; with --resume: the run's own total]"),
    batch: int = typer.Option(128, help="batch size"),
    lr: float = _LR,
    image_size: int = typer.Option(32, help="vision tower input side (renders are box-downsampled to it)"),
    vocab: Path = typer.Option(None, help="CLIP BPE: bpe_simple_vocab_16e6.txt.gz or the open-clip-torch wheel"),
    resume: bool = resume_option(),
    ckpt_every: int = _CKPT_EVERY,
    threads: str = threads_option(),
    seed: int = seed_option(),
) -> None:
    """Train the small-world CLIP (contrastive, symmetric InfoNCE) and export a transformers CLIPModel folder.

    OUT/export is what `train prior --clip` and `eval rprecision --clip` read (the run folder itself works too).
    """
    options = dict(locals())  # the command's options by name (the config takes those named like its fields)
    from tristudio.cli.errors import at_least
    from tristudio.core.priors.train_clip import ClipConfig, run_clip_training

    at_least(eval_every, 0, "--eval-every")
    at_least(image_size, 8, "--image-size")

    def train(cfg: ClipConfig, steps: int | None, callback) -> dict | None:
        renders, held = [str(d) for d in data or []], held_out and str(held_out)
        return run_clip_training(
            work, cfg, renders, held, vocab, resume, steps, ckpt_every, eval_every, callback=callback
        )

    report = _train("clip", options, ClipConfig, 1500, train)
    typer.echo(f"exported {work / 'export'}" + (f"; held-out retrieval {report['eval']}" if report else ""))


@app.command("prior")
def prior(
    work: Path = typer.Option(
        ..., "--out", help="run folder (config.json, checkpoints/, log.jsonl, samples/, export/)"
    ),
    clip_path: Path = typer.Option(None, "--clip", help="small-world CLIP folder whose frozen text tower conditions"),
    data: list[Path] = _DATA,
    steps: int = typer.Option(None, help="total steps [default: 20000; with --resume: the run's own total]"),
    batch: int = typer.Option(32, help="batch size"),
    lr: float = _LR,
    resolution: int = typer.Option(32, help="image side in pixels (renders are box-downsampled to it)"),
    channels: str = typer.Option("32,64,64", help="UNet block_out_channels"),
    warmup: int = typer.Option(100, help="linear learning-rate warm-up steps"),
    ema_decay: float = typer.Option(0.995, help="decay of the exported EMA of the UNet weights"),
    resume: bool = resume_option(),
    ckpt_every: int = _CKPT_EVERY,
    sample_every: int = typer.Option(500, help="export + sample grid every N steps"),
    threads: str = threads_option(),
    seed: int = seed_option(),
) -> None:
    """Train the small-world text-to-image prior (pixel-space UNet, frozen CLIP text tower, CFG dropout)."""
    options = dict(locals())  # the command's options by name (the config takes those named like its fields)
    from tristudio.cli.errors import at_least
    from tristudio.core.priors.train_prior import NORM_GROUPS, PriorConfig, run_prior_training

    if not resume and clip_path is None:
        raise typer.BadParameter(
            "the prior needs a small-world CLIP folder (tristudio train clip)", param_hint="--clip"
        )
    if clip_path is not None and not clip_path.is_dir():
        raise typer.BadParameter(f"{clip_path} is not a folder", param_hint="--clip")
    try:
        block_out_channels = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{channels!r} is not a comma-separated list of integers", param_hint="--channels"
        ) from None
    if not block_out_channels or any(c < 1 or c > 4096 or c % NORM_GROUPS for c in block_out_channels):
        raise typer.BadParameter(
            f"{channels!r}: channel counts must be multiples of {NORM_GROUPS} (the UNet's GroupNorm groups) "
            f"in [{NORM_GROUPS}, 4096]",
            param_hint="--channels",
        )
    at_least(resolution, 8, "--resolution")
    at_least(warmup, 0, "--warmup")
    at_least(sample_every, 0, "--sample-every")
    if not 0 <= at_least(ema_decay, 0, "--ema-decay") < 1:
        raise typer.BadParameter(f"{ema_decay} is not a decay in [0, 1)", param_hint="--ema-decay")

    def train(cfg: PriorConfig, steps: int | None, callback) -> Path:
        renders = [str(d) for d in data or []]
        return run_prior_training(
            work, cfg, clip_path and str(clip_path), renders, resume, steps, ckpt_every, sample_every, callback=callback
        )

    _train("prior", options, PriorConfig, 20000, train, block_out_channels=block_out_channels)
    typer.echo(f"exported {work / 'export'} (samples in {work / 'samples'})")


@app.command("features")
def features(
    out: Path = typer.Option(
        ...,
        "--out",
        help="run folder (config.json, log.jsonl, checkpoints/); at the end the encoder (model.safetensors + .json)",
    ),
    data: list[Path] = typer.Option(
        None, "--data", help="EG3D dataset folders / zips and render-set folders; --resume: the run's"
    ),
    per_source: int = typer.Option(4000, help="images taken from each source (the first N)"),
    steps: int = typer.Option(2000, help="autoencoder steps"),
    batch: int = typer.Option(64, help="batch size"),
    resume: bool = resume_option(),
    ckpt_every: int = ckpt_every_option(500),
    threads: str = threads_option(),
    seed: int = seed_option(),
) -> None:
    """Train the small-world feature extractor for FID-sw / KID-sw (an autoencoder's encoder) on renders."""
    from rich.console import Console

    from tristudio.cli.errors import at_least, clean_errors, out_folder
    from tristudio.core.metrics.smallworld import load_training_images, train_small_world_extractor

    out_folder(out)
    if not data:  # --resume fills it in from the run's command.json (cli/resume.py)
        raise missing_option("--data", "the images to train on", out, resume)
    for value, name in (
        (per_source, "--per-source"),
        (steps, "--steps"),
        (batch, "--batch"),
        (ckpt_every, "--ckpt-every"),
    ):
        at_least(value, 1, name)
    apply_threads(threads)
    console = Console(highlight=False)
    with clean_errors():
        images = load_training_images([str(d) for d in data], per_source)
        console.print(f"{len(images)} images from {len(data)} source(s)")
        train_small_world_extractor(
            images, out, steps, batch, seed=seed, log=console.log, checkpoint_every=ckpt_every, resume=resume
        )
    typer.echo(f"wrote {out}")
