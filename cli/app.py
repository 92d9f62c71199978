"""The `tristudio` command line (typer + rich).

`tristudio` with no command opens the viewer on the shipped model. Each command group lives in its own module under
cli/commands/ and is registered here; heavy imports (torch, the GUI) happen inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import importlib
import inspect

import typer

from tristudio.cli.resume import ResumeCommand

app = typer.Typer(
    name="tristudio",
    help="A studio for 3D generative models trained without 3D data (EG3D tri-plane GANs, DreamFusion text-to-3D).",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (module under tristudio.cli.commands, attribute, group name or None for a plain command)
_COMMANDS = [
    ("dataset", "app", "dataset"),
    ("bench", "app", "bench"),
    ("generate", "generate", None),
    ("convert", "convert", None),
    ("view", "view", None),
    ("fit", "fit", None),
    ("train", "app", "train"),
    ("train_priors", "app", "train"),  # `tristudio train clip|prior` join the same group
    ("evaluate", "app", "eval"),
    ("eval_rprecision", "app", "eval"),
    ("acceptance", "app", "eval"),  # eval eg3d-acceptance | prior-acceptance
    ("renders", "app", "renders"),
    ("dreamfusion", "dreamfusion", None),
    ("sample", "sample", None),
]


def _register() -> None:
    groups: dict[str, typer.Typer] = {}
    for module, attr, group in _COMMANDS:
        mod = importlib.import_module(f"tristudio.cli.commands.{module}")
        obj = getattr(mod, attr)
        if group is None:
            app.command(name=module.replace("_", "-"))(obj)
        elif group in groups:  # a second module adding commands to an existing group
            groups[group].registered_commands.extend(obj.registered_commands)
        else:
            groups[group] = obj
            app.add_typer(obj, name=group)
    for grp in groups.values():
        grp.info.help = group_help(grp)
    for info in [*app.registered_commands, *(c for g in groups.values() for c in g.registered_commands)]:
        if "resume" in inspect.signature(info.callback).parameters:  # a trainer: cli/resume.py's rule
            info.cls = ResumeCommand


def command_names(group: typer.Typer) -> list[str]:
    """The names a group's visible commands are called by (typer's rule: the function name, _ -> -)."""
    return [c.name or c.callback.__name__.replace("_", "-") for c in group.registered_commands if not c.hidden]


def group_help(group: typer.Typer) -> str:
    """A group's one-line help, built from what is registered: '<summary>: <command>, <command>, ...'.

    The summary is the group's own help up to its first ':' or '.', so a module that adds commands to a group
    (train_priors adds `clip` and `prior` to `train`) shows in the top-level help without editing another module."""
    own = str(group.info.help or "").strip()
    summary = own.split(":")[0].split(".")[0].strip() or "Commands"
    return f"{summary}: {', '.join(command_names(group))}."


_register()


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """With no command: open the viewer on the shipped model."""
    if ctx.invoked_subcommand is None:  # run the registered `view` command on no arguments: its parsed defaults
        view = ctx.command.get_command(ctx, "view")
        with view.make_context("view", [], parent=ctx) as view_ctx:
            view.invoke(view_ctx)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
