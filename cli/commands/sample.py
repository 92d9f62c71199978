"""`tristudio sample --prior PATH "a red cube, side view"`: text-to-image samples from a diffusion prior folder."""

from __future__ import annotations

from pathlib import Path

import typer

from tristudio.cli.options import prior_option, seed_option, threads_option
from tristudio.core.threads import apply_threads

# The side of a written PNG (the prior's resolution x --scale): the default --scale 4 of a 512 px Stable Diffusion
# gives 2048 px; past this the upscaled images (and their grid) no longer fit in memory.
MAX_PNG_SIDE = 4096


def sample(
    prompts: list[str] = typer.Argument(..., help='one or more prompts, e.g. "a red cube, side view"'),
    prior: Path = prior_option(),
    steps: int = typer.Option(50, help="DDIM steps"),
    guidance: float = typer.Option(
        None,
        help="classifier-free guidance scale (1 = off) [default: the prior's own: "
        "1.25 for the shipped small-world prior, whose shapes degrade above ~1.5; 7.5 for "
        "other folders]",
    ),
    eta: float = typer.Option(1.0, help="DDIM eta: 1 = stochastic (DDPM-like) steps, 0 = deterministic DDIM"),
    seed: int = seed_option("noise seed"),
    num: int = typer.Option(4, "--num", "-n", help="images per prompt"),
    negative: str = typer.Option("", help="negative prompt (the unconditional branch of CFG)"),
    out: Path = typer.Option(Path("samples"), help="output folder"),
    scale: int = typer.Option(4, help=f"nearest-neighbour upscale of the written PNGs (to at most {MAX_PNG_SIDE} px)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    threads: str = threads_option(),
) -> None:
    """Sample images with DDIM (eta 1 by default) + classifier-free guidance; one PNG per image and a grid."""
    import re

    from tristudio.cli.errors import at_least, clean_errors, finite, out_folder, positive
    from tristudio.core.device import DeviceError
    from tristudio.core.io.assets import shipped_prior_path
    from tristudio.core.io.images import save_png, to_uint8
    from tristudio.core.io.progress import quiet_loader_bars
    from tristudio.core.priors import PriorLoadError, load_prior
    from tristudio.core.priors.ddim import sample_images, save_sample_grid

    at_least(num, 1, "--num")
    at_least(steps, 1, "--steps")
    at_least(scale, 1, "--scale")
    positive(guidance, "--guidance", "scale")
    if not 0 <= finite(eta, "--eta") <= 1:
        raise typer.BadParameter(f"{eta} is not in [0, 1]", param_hint="--eta")
    out_folder(out)
    empty = [i for i, p in enumerate(prompts, 1) if not p.strip()]  # (an unconditional sample is not a feature)
    if empty:
        which = f"prompt {empty[0]} of {len(prompts)} is empty" if len(prompts) > 1 else "empty prompt"
        raise typer.BadParameter(f"{which}: give a text description, e.g. 'a red cube'", param_hint="PROMPTS")
    apply_threads(threads)
    path = prior or shipped_prior_path()
    quiet_loader_bars()
    try:
        model = load_prior(path, device=device)
    except DeviceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except PriorLoadError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prior") from None
    if model.resolution * scale > MAX_PNG_SIDE:
        raise typer.BadParameter(
            f"{scale} makes {model.resolution * scale} px PNGs of the prior's {model.resolution} px images; "
            f"at most {MAX_PNG_SIDE} px (--scale {MAX_PNG_SIDE // model.resolution})",
            param_hint="--scale",
        )
    guidance = model.sampling_guidance if guidance is None else guidance
    for p in [*prompts, negative]:
        if model.truncated(p):
            n = len(model.prompt_token_ids(p))
            typer.echo(f"warning: {p[:40]!r}... is {n} tokens; the prior reads the first {model.prompt_budget()}")
    expanded = [p for p in prompts for _ in range(num)]
    with clean_errors():
        images = sample_images(model, expanded, steps=steps, guidance=guidance, seed=seed, negative=negative, eta=eta)
        out.mkdir(parents=True, exist_ok=True)
        if scale > 1:
            images = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
        for i, (prompt, image) in enumerate(zip(expanded, to_uint8(images, (0.0, 1.0)), strict=True)):
            slug = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:60] or "empty"
            save_png(out / f"{i:03d}_{slug}_seed{seed}.png", image)
        grid = save_sample_grid(out / f"grid_seed{seed}.png", images, cols=num)
    typer.echo(
        f"wrote {len(expanded)} images and {grid} ({model.resolution} px, {steps} DDIM steps, eta {eta}, "
        f"CFG {guidance})"
    )
