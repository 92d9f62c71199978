"""--resume continues a run as it was started: one rule for every command with --resume (train eg3d | clip | prior |
features, fit, dreamfusion).

A new run records its command line in RUN/command.json: {"command": "fit", "options": {name: value, ...} (every
option, typed or default; paths absolute), "typed": [the names typed], "models": {option: fingerprint of the model
folder it names}} (core/io/training_run.py writes it in `check_start`, under the run's lock, once the command has
checked its options). On --resume of a run that has one:
  - another command's run is refused before anything is written;
  - an option left out takes the run's value, so `tristudio fit SCENE --out RUN --resume` needs nothing more;
  - an option typed with another value is refused, naming both values: a resumed run is the same run (its scene, data,
    models and hyper-parameters), and so is a --prior / --clip folder whose weights changed. The options in FREE may
    change: how long the run is, how often it checkpoints, evaluates and renders, threads, device, and what is
    exported at the end; typed ones become the run's (recorded by check_start, as above).
A run started before command.json existed resumes as before, with the options given.

`ResumeCommand` is the click command class that does this; cli/app.py gives it to every command with --resume. A
command whose --out defaults to None names its folder from its other options with a `default_out(params)` attribute
(dreamfusion: runs/dreamfusion/<prompt>), filled in here before the command runs, so --resume finds the run.
"""

from __future__ import annotations

import os
import shlex
import types
import typing
from pathlib import Path

import typer
from typer.core import TyperCommand

from tristudio.cli.errors import fail
from tristudio.core.io.checkpoint import folder_fingerprint
from tristudio.core.io.training_run import COMMAND, STARTING_COMMAND, TrainingRun, run_export

__all__ = ["FREE", "ResumeCommand", "missing_option"]

# Options that say how long and how to run, not what the run is (python parameter names).
FREE = frozenset(
    {
        "resume",
        "steps",
        "kimg",
        "ckpt_every",
        "checkpoint_every",
        "eval_every",
        "sample_every",
        "render_every",
        "log_every",
        "keep",
        "threads",
        "device",
        "video",
        "mesh",
        "mesh_format",
        "mesh_resolution",
        "held_out",
    }
)


def _model_folders(params: dict) -> dict[str, Path]:
    """The model folders a run reads (its --prior, its --clip: a run folder stands for its export; None: the shipped
    one), by option name: a resumed run must read the same weights."""
    from tristudio.core.io.assets import shipped_clip_path, shipped_prior_path

    kinds = {"prior_path": ("prior", shipped_prior_path), "clip_path": ("clip", shipped_clip_path)}
    folders = {}
    for name, (kind, shipped) in kinds.items():
        if name in params:
            folder = Path(params[name]) if params[name] is not None else shipped()
            try:
                folders[name] = run_export(folder, kind)
            except FileNotFoundError:
                continue  # (the command says what is missing)
    return folders


def _fingerprints(params: dict) -> dict[str, str]:
    return {name: folder_fingerprint(f) for name, f in _model_folders(params).items() if f.is_dir()}


def _plain(value):
    """An option's value as JSON: paths absolute (and resolved: ../x, ./x and links name one folder), sequences
    lists."""
    if isinstance(value, Path):
        return str(value.expanduser().resolve())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _typed_like(value, hint):
    """A recorded JSON value back in the parameter's type (Path, list[Path], float)."""
    if value is None:
        return None
    if hint is Path:
        return Path(value)
    if typing.get_origin(hint) is list and typing.get_args(hint) == (Path,):
        return [Path(v) for v in value]
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _interrupted(ctx: typer.Context, command: TyperCommand, out: Path) -> str:
    """The line printed on Ctrl-C: the run's last checkpoint and the command that continues it (its arguments, the
    folder and --resume: the other options come back from command.json)."""
    from tristudio.core.io.run_checkpoints import latest_step

    arguments = [shlex.quote(str(ctx.params[p.name])) for p in command.params if not p.opts[0].startswith("-")]
    words = ["tristudio", *_command_name(ctx).split(), *arguments, "--out", shlex.quote(str(out)), "--resume"]
    again = " ".join(words)
    step = latest_step(out)
    where = f"its last checkpoint is step {step}" if step is not None else "it has no checkpoint yet (it restarts at 0)"
    return f"interrupted: {out} is kept; {where}. Continue with: {again}"


def _label(param) -> str:
    return param.opts[0] if param.opts and param.opts[0].startswith("-") else param.name.upper()


TYPED_NOW = "tristudio.typed_now"  # ctx.meta key: the option names this command line typed itself


class ResumeCommand(TyperCommand):
    """A trainer command: records a new run's command line, and on --resume continues the run's (module doc)."""

    def invoke(self, ctx: typer.Context):
        out_param = next(p for p in self.params if "--out" in (p.opts or []))
        out = ctx.params.get(out_param.name)
        default_out = getattr(getattr(self.callback, "__wrapped__", self.callback), "default_out", None)
        if out is None and default_out is not None:  # a folder named from the other options (dreamfusion: the prompt)
            out = ctx.params[out_param.name] = default_out(ctx.params)
        # what this command line typed, before --resume fills in (and marks as typed) the run's recorded options
        ctx.meta[TYPED_NOW] = {
            n for n in ctx.params if ctx.get_parameter_source(n).name in ("COMMANDLINE", "ENVIRONMENT")
        }
        if ctx.params.get("resume") and out is not None:  # the resumed run's command line, if it changes
            command = self._continue(ctx, Path(out), out_param.name)
        else:  # a new run's
            source = type(ctx.get_parameter_source(out_param.name))
            command = {
                "command": _command_name(ctx),
                "options": {name: _plain(value) for name, value in ctx.params.items()},
                "typed": sorted(n for n in ctx.params if ctx.get_parameter_source(n) is not source.DEFAULT),
                "models": _fingerprints(ctx.params),  # the weights it reads (folder_fingerprint)
            }
        token = STARTING_COMMAND.set(command)  # TrainingRun.check_start writes it, under the lock, once checked
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C: say where the run stands and how to continue it
            if out is not None and os.environ.get("RANK", "0") == "0":
                typer.echo(_interrupted(ctx, self, Path(out)), err=True)
            raise
        finally:
            STARTING_COMMAND.reset(token)

    def _param(self, name: str):
        return next(p for p in self.params if p.name == name)

    def _continue(self, ctx: typer.Context, out: Path, out_name: str) -> dict | None:
        """Left-out options take the recorded values (with their recorded source); typed ones must equal them. The
        folder itself may have moved: --out is not compared. Returns the command line to record when typed FREE
        options change it (the next --resume continues with the latest --steps, say), else None."""
        run = TrainingRun(out, warn=None)
        try:
            recorded = run.read_command()
        except ValueError as exc:
            fail(str(exc))
        if recorded is None:  # a run from before command.json: the options as given
            return None
        name = _command_name(ctx)
        if str(recorded.get("command", "")).split()[-len(name.split()) :] != name.split():
            fail(f"{out} is a `tristudio {recorded.get('command')}` run, not a `tristudio {name}` one")
        hints = typing.get_type_hints(getattr(self.callback, "__wrapped__", self.callback))
        source = type(ctx.get_parameter_source("resume"))
        old, typed = recorded["options"], set(recorded.get("typed", ()))
        refused, changed = [], {}
        for param in self.params:
            key = param.name
            if key not in old or key not in ctx.params or key == out_name:
                continue
            if ctx.get_parameter_source(key) is source.DEFAULT:
                ctx.params[key] = _checked(old[key], hints.get(key), param, out)
                ctx.set_parameter_source(key, source.COMMANDLINE if key in typed else source.DEFAULT)
            elif _plain(ctx.params[key]) != old[key]:
                if key in FREE:
                    if key != "resume":
                        changed[key] = _plain(ctx.params[key])
                else:
                    was = "left to its default" if old[key] is None else repr(old[key])
                    refused.append(f"{_label(param)} {_plain(ctx.params[key])!r} (the run's: {was})")
        for key, then in recorded.get("models", {}).items():  # the same options may name changed weights
            now = _fingerprints({key: ctx.params.get(key)}).get(key)
            if now is not None and now != then:
                folder = _model_folders({key: ctx.params.get(key)})[key]
                refused.append(
                    f"{_label(self._param(key))} {folder}: not the weights the run started with (retrained?)"
                )
        if refused:
            fail(
                f"{out} was started with other options ({out / COMMAND}): " + "; ".join(refused) + ". A resumed run "
                "continues as it was started: leave these out, or start a new run with another --out (files that "
                f"moved: edit their paths in {out / COMMAND})"
            )
        if not changed:
            return None
        return {**recorded, "options": {**old, **changed}, "typed": sorted(typed | set(changed))}


def missing_option(option: str, what: str, out: Path, resume: bool) -> typer.BadParameter:
    """The error for an option a new run needs and --resume takes from the run's command.json (train eg3d --data)."""
    if not resume:
        why = "missing"
    elif not TrainingRun(out, warn=None).exists():
        why = f"{out} holds no run to resume (drop --resume to start one)"
    else:
        why = f"{out} has no command.json to take it from (a run from an older tristudio)"
    return typer.BadParameter(f"{why}: name {what}", param_hint=option)


def _command_name(ctx: typer.Context) -> str:
    """The command's words below `tristudio` ("train eg3d"), however it was launched (python -m, torchrun)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


def _checked(value, hint, param, out: Path):
    """A recorded value back in the parameter's type, or one error naming command.json's bad entry."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if union else hint
    ok = (
        (value is None and param.default is None)
        or (base is bool and isinstance(value, bool))
        or (base in (int, float) and isinstance(value, int | float) and not isinstance(value, bool))
        or (base in (str, Path) and isinstance(value, str))
        or (typing.get_origin(base) is list and isinstance(value, list))
    )
    if not ok:
        fail(f"{out / COMMAND}: {_label(param)} is {value!r}, not a value of that option; fix or remove the entry")
    return _typed_like(value, base)
