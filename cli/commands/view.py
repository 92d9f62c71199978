"""`tristudio view [MODEL]` (and bare `tristudio`): the interactive viewer. Needs an X display."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tristudio.cli.options import threads_option

NO_DISPLAY = (
    "tristudio view: no display (DISPLAY is not set). Run it under a virtual X server: "
    "`xvfb-run -a tristudio view`, or use the headless command `tristudio generate ...` for images."
)


def display_problem() -> str | None:
    """None when a window can be opened, else one line saying why not and what to do."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return NO_DISPLAY
    try:
        import importlib

        import imgui_bundle  # noqa: F401  (first: it points pyGLFW at imgui-bundle's own libglfw)

        glfw = importlib.import_module("glfw")

        glfw.ERROR_REPORTING = "ignore"
        ok = glfw.init()
        if ok:
            glfw.terminate()
        else:
            return (
                f"tristudio view: cannot open the display {os.environ.get('DISPLAY')!r} (glfw init failed). "
                "Run it under `xvfb-run -a tristudio view`, or use `tristudio generate ...`."
            )
    except Exception as exc:  # glfw missing or broken: let the runner try, but say so
        print(f"tristudio view: could not pre-check the display ({exc})", file=sys.stderr)
    return None


def view(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="EG3D .pkl or tristudio model folder (default: shipped), a diffusers prior folder, or a "
            "`tristudio dreamfusion` run folder (opened in the DreamFusion scene)"
        ),
    ] = None,
    preset: Annotated[str, typer.Option(help="random-init preset when no model is shipped")] = "small",
    seed: Annotated[int, typer.Option(help="seed A")] = 0,
    capture_dir: Annotated[Path, typer.Option(help="where captures are written")] = Path("captures"),
    width: Annotated[int, typer.Option(help="window width", min=1)] = 1280,
    height: Annotated[int, typer.Option(help="window height", min=1)] = 800,
    device: Annotated[str, typer.Option(help="auto (CUDA when present) | cpu | cuda")] = "auto",
    threads: str = threads_option(
        "torch threads of the render and job threads: a number, or 0 / auto = the idle cores but one"
    ),
) -> None:
    """Open the interactive viewer (orbit, latent interpolation, captures)."""
    problem = display_problem()
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.state import CaptureState, Eg3dState, ViewerState

    state = ViewerState(eg3d=Eg3dState(seed_a=seed), capture=CaptureState(capture_dir=str(capture_dir)))
    app = ViewerApp(
        model_path=str(model) if model else None,
        preset=preset,
        state=state,
        window_size=(width, height),
        device=device,
        threads=None if threads.strip().lower() in ("0", "auto") else int(threads),
    )
    app.run()
