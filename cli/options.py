"""Options shared by several commands (one definition, one help text), and configs built from options."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

import typer

from tristudio.core.mesh import MESH_FORMATS
from tristudio.core.threads import THREADS_HELP, resolve_threads

__all__ = [
    "MAX_IMAGE_SIDE",
    "image_side_option",
    "SEED_MAX",
    "SEED_MIN",
    "config_from",
    "threads_option",
    "resume_option",
    "seed_option",
    "ckpt_every_option",
    "prior_option",
    "clip_option",
    "trunc_option",
    "mesh_option",
    "mesh_format_option",
    "mesh_resolution_option",
    "needs_flag",
]

T = TypeVar("T")


def _check_threads(value: str) -> str:
    try:
        resolve_threads(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


# The largest image side a command renders or trains at (--resolution, --render-resolution): past it the images
# (and DreamFusion's tri-planes, one texel per pixel) no longer fit in memory.
MAX_IMAGE_SIDE = 1024


def image_side_option(default: int | None, help: str, flag: str = "--resolution") -> int | None:
    """An image side in pixels, 8 .. MAX_IMAGE_SIDE (a larger one asks torch for more memory than a machine has)."""
    return typer.Option(default, flag, min=8, max=MAX_IMAGE_SIDE, help=help)


def threads_option(help: str = THREADS_HELP) -> str:
    """`--threads N | 0 | auto` (default auto); pass the value to core.threads.apply_threads (or resolve_threads)."""
    return typer.Option("auto", "--threads", help=help, callback=_check_threads)


# The options of a training run, the same on every trainer (train eg3d | clip | prior | features, fit, dreamfusion).
RESUME_HELP = "continue the run in the folder from its last checkpoint (a new run refuses a folder that holds one)"
SEED_HELP = "random seed: the run is a function of its options and this seed"
CKPT_EVERY_HELP = "checkpoint every N steps (and at the last step)"


def resume_option() -> bool:
    """`--resume`: core/io/training_run.py TrainingRun.check_start says what it accepts."""
    return typer.Option(False, "--resume", help=RESUME_HELP)


# torch's and numpy's generators take 64-bit seeds (a negative one as its two's complement): --seed is a signed
# 64-bit integer everywhere, so a larger one is refused naming the option instead of overflowing deep inside.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


def seed_option(help: str = SEED_HELP) -> int:
    return typer.Option(0, "--seed", min=SEED_MIN, max=SEED_MAX, help=help)


def ckpt_every_option(default: int, *aliases: str) -> int:
    """`--ckpt-every N` (`aliases`: the older names a command also answers to)."""
    return typer.Option(default, "--ckpt-every", *aliases, help=CKPT_EVERY_HELP)


# The models a command reads: one name and one help text each; None means the shipped one (core/io/assets.py).
PRIOR_HELP = "diffusion prior folder, diffusers layout (default: the shipped small-world prior)"
CLIP_HELP = "CLIP folder, transformers CLIPModel (default: the shipped small-world CLIP)"
TRUNC_HELP = "truncation psi (1 = none, 0 = the average w)"


def prior_option() -> Path | None:
    return typer.Option(None, "--prior", help=PRIOR_HELP)


def clip_option() -> Path | None:
    """`--clip`, a CLIP that judges (R-Precision, acceptance); `train prior --clip` is the CLIP that conditions."""
    return typer.Option(None, "--clip", help=CLIP_HELP)


def trunc_option(default: float) -> float:
    """`--trunc` (EG3D's gen_samples.py name; `--psi` too)."""
    return typer.Option(default, "--trunc", "--psi", help=TRUNC_HELP)


# Mesh export (generate, dreamfusion): marching cubes, saved by core/mesh.py's save_mesh.
def _check_mesh_format(value: str) -> str:
    if f".{value}" not in MESH_FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(f[1:] for f in MESH_FORMATS)}")
    return value


def mesh_option() -> bool:
    return typer.Option(False, "--mesh", help="also write a vertex-coloured mesh (marching cubes)")


def mesh_format_option() -> str:
    return typer.Option("glb", "--mesh-format", help="glb | ply | obj", callback=_check_mesh_format)


def mesh_resolution_option(default: int) -> int:
    return typer.Option(default, "--mesh-resolution", min=8, max=512, help="marching-cubes grid side")


def needs_flag(ctx: typer.Context, flag: str, given: bool, *names: str) -> None:
    """Refuse options that only matter with `flag` (--mesh, --video) when they were typed without it: they would be
    ignored, and the user expected their files. `names` are the options' parameter names."""
    typed = [p.opts[0] for p in ctx.command.params if p.name in names and _typed(ctx, p.name)]
    if typed and not given:
        them = "it" if len(typed) == 1 else "them"
        raise typer.BadParameter(
            f"{', '.join(typed)} without {flag}: add {flag}, or leave {them} out", param_hint=typed[0]
        )


def _typed(ctx: typer.Context, name: str) -> bool:
    """Typed on this command line (under --resume, not one of the run's recorded options: cli/resume.py)."""
    from tristudio.cli.resume import TYPED_NOW

    if TYPED_NOW in ctx.meta:
        return name in ctx.meta[TYPED_NOW]
    return ctx.get_parameter_source(name).name in ("COMMANDLINE", "ENVIRONMENT")


def config_from(cls: type[T], options: dict, **fields) -> T:
    """The dataclass `cls` from a command's options: each field named like an option takes that option's value;
    `fields` gives the others (and overrides). `options` is the command's `dict(locals())` taken on entry."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in options.items() if k in names}, **fields})
