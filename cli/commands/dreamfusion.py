"""`tristudio dreamfusion "a red cube"`: text-to-3D by score distillation through a frozen diffusion prior.

Run folder (--out):
    checkpoints/step-N/model.*, checkpoints/latest  every --ckpt-every steps and at the end (--resume);
                                                one step = one folder renamed into place (core/io/run_checkpoints)
    log.jsonl                                   one line per step (loss terms, timestep, shading, view prompt)
    loss.png                                    loss curves (PIL)
    renders/step_000100.png                     4 views (shaded above, normals below) every --render-every steps
    orbit.mp4 (--video), mesh.<ext> (--mesh)
"""

from __future__ import annotations

import glob
from pathlib import Path

import typer

from tristudio.cli.errors import clean_errors, esc, fail
from tristudio.cli.options import (
    ckpt_every_option,
    config_from,
    image_side_option,
    mesh_format_option,
    mesh_option,
    mesh_resolution_option,
    needs_flag,
    prior_option,
    resume_option,
    seed_option,
    threads_option,
)
from tristudio.core.dreamfusion.methods import METHODS, methods_help
from tristudio.core.io.assets import require_shipped, shipped_prior_path
from tristudio.core.threads import apply_threads


def _plot(out: Path) -> None:
    from tristudio.core.io.training_run import TrainingRun

    TrainingRun(out).plot(keys=("loss", "guidance_grad_norm", "opacity", "lora_loss"), name="loss.png")


def _optimise(df, console, steps: int, out: Path, render_every: int, checkpoint_every: int) -> None:
    """df.run up to `steps` under a progress bar (loss, rate), with preview grids and the loss plot on their cadence."""
    from rich.progress import TextColumn

    from tristudio.core.dreamfusion.export import preview_grid
    from tristudio.core.io.images import save_png
    from tristudio.core.io.progress import step_progress

    with step_progress(console, TextColumn("loss {task.fields[loss]:>9.4g}")) as progress:
        task = progress.add_task(
            df.cfg.guidance, total=steps, completed=df.step_count, first=df.step_count, loss=float("nan")
        )

        def on_step(m: dict) -> None:
            s = m["step"] + 1
            progress.update(task, completed=s, loss=m["loss"])
            if render_every and (s % render_every == 0 or s == steps):
                save_png(out / "renders" / f"step_{s:06d}.png", preview_grid(df, 64))
            if s % 50 == 0 or s == steps:
                _plot(out)

        df.run(steps, out_dir=out, checkpoint_every=checkpoint_every, on_step=on_step)


def dreamfusion(
    ctx: typer.Context,
    prompt: str = typer.Argument(..., help='what to make, e.g. "a red sphere"'),
    guidance: str = typer.Option("sds", "--guidance", help=methods_help()),
    steps: int = typer.Option(
        1000,
        "--steps",
        min=0,
        help="total optimisation steps (counting resumed ones; --resume: the run's unless given)",
    ),
    out: Path = typer.Option(None, "--out", help="run folder [default: runs/dreamfusion/<the prompt as a name>]"),
    prior_path: Path = prior_option(),
    guidance_scale: float = typer.Option(
        None, "--guidance-scale", help="default: the method's scale for the prior (see --guidance)"
    ),
    lr: float = typer.Option(
        1e-2, "--lr", help="learning rate (the prior's profile may decay it over the run: core/dreamfusion/profiles.py)"
    ),
    resolution: int = image_side_option(None, "training image size in pixels (default: the prior's, at most 64)"),
    render_resolution: int = image_side_option(
        None, "render the NeRF at this size and upsample (default: --resolution)", "--render-resolution"
    ),
    seed: int = seed_option(),
    resume: bool = resume_option(),
    no_view_dependent: bool = typer.Option(False, "--no-view-dependent", help="no 'front/side/back view' words"),
    video: bool = typer.Option(False, "--video", help="write orbit.mp4 at the end"),
    mesh: bool = mesh_option(),
    mesh_format: str = mesh_format_option(),
    mesh_resolution: int = mesh_resolution_option(96),
    render_every: int = typer.Option(100, "--render-every", help="4-view PNG every N steps (0: never)"),
    checkpoint_every: int = ckpt_every_option(100, "--checkpoint-every"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    threads: str = threads_option(),
) -> None:
    """Optimise a 3D scene for a text prompt with SDS, CSD or VSD; export video and mesh."""
    options = dict(locals())  # the command's options by name (DreamFusionConfig takes those named like its fields)
    from rich.console import Console

    from tristudio.cli.errors import at_least, out_folder, positive
    from tristudio.core.io.runlock import run_lock

    positive(guidance_scale, "--guidance-scale", "scale")
    positive(lr, "--lr", "learning rate")
    needs_flag(ctx, "--mesh", mesh, "mesh_format", "mesh_resolution")  # (typed now; --mesh may be the run's)
    for value, low, name in ((render_every, 0, "--render-every"), (checkpoint_every, 1, "--ckpt-every")):
        at_least(value, low, name)
    out_folder(out)
    console = Console(highlight=False)
    apply_threads(threads)
    with clean_errors(), run_lock(out, warn=lambda line: console.print(esc(line), soft_wrap=True)):
        from tristudio.core.dreamfusion.prompts import check_prompt

        prompt = check_prompt(prompt)  # before any heavy import
        if guidance not in METHODS:
            fail(f"unknown --guidance {guidance!r}; expected one of {', '.join(METHODS)}")
        if prior_path is None:
            shipped = shipped_prior_path()
            prior_path = require_shipped(
                shipped,
                "model_index.json",
                f"the shipped small-world prior is missing: expected a diffusers folder at {shipped} "
                "(or pass --prior PATH)",
            )
        elif not Path(prior_path).is_dir():
            fail(f"prior folder not found: {prior_path} (expected a diffusers folder with model_index.json)")

        from dataclasses import asdict

        from tristudio.core.dreamfusion.export import export_mesh, write_orbit_video
        from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig, field_is_finite
        from tristudio.core.io.progress import quiet_loader_bars
        from tristudio.core.io.training_run import CONFIG, TrainingRun
        from tristudio.core.priors import load_prior

        out = Path(out)
        run = TrainingRun(out, warn=lambda line: console.print(esc(line), soft_wrap=True))
        run.check_start(resume)
        saved = run.read_config() if resume and (out / CONFIG).is_file() else {}
        if saved.get("prompt", prompt) != prompt:  # before the prior loads (runs from before config.json: below)
            fail(f"{out} is a run for {saved['prompt']!r}, not {prompt!r}")
        quiet_loader_bars()
        prior = load_prior(prior_path, device=device)
        if DreamFusion.has_checkpoint(out):  # --resume (check_start refused a new run here)
            df = DreamFusion.load(out, prior, warn=lambda line: console.print(esc(line), soft_wrap=True))
            if df.cfg.prompt != prompt:
                fail(f"{out} is a run for {df.cfg.prompt!r}, not {prompt!r}")
            df.cfg.steps = steps
            console.print(f"resuming {esc(out)} at step {df.step_count}", soft_wrap=True)
        else:
            cfg = config_from(DreamFusionConfig, options, prompt=prompt, view_dependent=not no_view_dependent)
            df = DreamFusion(cfg, prior)
        if not field_is_finite(df):
            fail("the field holds NaN or Inf values")
        run.write_config(asdict(df.cfg))
        if df.prompt_note:
            console.print(esc(df.prompt_note), soft_wrap=True)
        console.print(esc(f"{df.cfg.guidance.upper()} on {prompt!r} with {prior!r}"), soft_wrap=True)

        if df.step_count >= steps:
            console.print(f"{esc(out)} is at step {df.step_count} of {steps}: no step to take", soft_wrap=True)
        else:
            _optimise(df, console, steps, out, render_every, checkpoint_every)
        if not field_is_finite(df):
            raise FloatingPointError("the field holds NaN or Inf values after training")
        if not DreamFusion.has_checkpoint(out):
            df.save(out)
        if (out / "log.jsonl").is_file():
            _plot(out)
        if video:
            path = write_orbit_video(df, out / "orbit.mp4")
            console.print(f"video: {esc(path)}")
        if mesh:
            m = export_mesh(df, out / f"mesh.{mesh_format}", resolution=mesh_resolution)
            console.print(
                esc(f"mesh: {out / f'mesh.{mesh_format}'} ({len(m.vertices)} vertices, {len(m.faces)} faces)")
            )
        console.print(f"done: {esc(out)}", soft_wrap=True)


def _default_out(params: dict) -> Path:
    """runs/dreamfusion/<the prompt as a name>: one folder per prompt, so another prompt starts a run of its own.
    Prompts that share a name ("a red cube", "A red cube!") get NAME, NAME-2, ...: the folder whose run is of this
    prompt, else the first one that holds no run."""
    import itertools

    from tristudio.core.dreamfusion.prompts import run_name

    prompt, base = params["prompt"].strip(), Path("runs/dreamfusion") / run_name(params["prompt"])
    for folder in [base, *sorted(base.parent.glob(f"{glob.escape(base.name)}-*"))]:  # every NAME-k there, gaps too
        if _run_prompt(folder) == prompt:
            return folder
    numbered = (base.with_name(f"{base.name}-{i}") for i in itertools.count(2))
    return next(f for f in itertools.chain([base], numbered) if _run_prompt(f) is None)


def _run_prompt(folder: Path) -> str | None:
    """The prompt of the run in `folder`: its command line's, else its config's (older runs); None: no run there."""
    import json

    for name, keys in (("command.json", ("options", "prompt")), ("config.json", ("prompt",))):
        try:
            value = json.loads((folder / name).read_text())
            for key in keys:
                value = value[key]
            return value.strip()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


dreamfusion.default_out = _default_out  # cli/resume.py fills a left-out --out with it before the command runs
