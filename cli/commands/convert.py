"""`tristudio convert PKL --out DIR`: an official EG3D network pickle -> a tristudio model folder.

The pickle is read by the restricted unpickler (nothing in it runs); G_ema is built, checked and written as
model.safetensors + model.json. Bad inputs print one red line and exit with code 1.
"""

from __future__ import annotations

from pathlib import Path

import typer


def convert(
    pkl: Path = typer.Argument(..., help="official EG3D network pickle (e.g. ffhq512-128.pkl, network-snapshot-*.pkl)"),
    out_dir: Path = typer.Option(..., "--out", help="model folder to write (model.safetensors + model.json)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the model (or other files) in --out"),
) -> None:
    """Convert an official EG3D network pickle into a tristudio model folder, without running code from the pickle."""
    from tristudio.cli.errors import fresh_folder, out_folder
    from tristudio.core.eg3d.load import LOAD_ERRORS, convert_pickle

    if not _same_conversion(out_folder(out_dir), pkl):  # converting the same pickle again replaces its folder
        fresh_folder(out_dir, overwrite, "model.json", "a model")

    try:
        summary = convert_pickle(pkl, out_dir)
    except LOAD_ERRORS as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.secho(f"error: {message}", fg="red", err=True)
        raise typer.Exit(code=1) from None
    rk = summary["rendering_kwargs"]
    typer.echo(f"converted {summary['source']} (G_ema) -> {summary['out_dir']}")
    typer.echo(f"  parameters        {summary['parameters']:,} in {summary['tensors']} tensors")
    typer.echo(
        f"  resolution        {summary['img_resolution']} px output, "
        f"neural rendering {summary['neural_rendering_resolution']} px"
    )
    typer.echo(
        f"  rendering         {rk['depth_resolution']} + {rk['depth_resolution_importance']} samples/ray, "
        f"ray {rk['ray_start']} .. {rk['ray_end']}, box_warp {rk['box_warp']}"
    )
    typer.echo(f"  camera            radius {rk['avg_camera_radius']}, pivot {rk['avg_camera_pivot']}")
    typer.echo(f"  super-resolution  {rk['superresolution_module']}")


def _same_conversion(out: Path, pkl: Path) -> bool:
    """Whether `out` holds only a model converted from this very pickle (model.json's source sha256 is its)."""
    import json

    from tristudio.core.io.checkpoint import file_sha256

    if not out.is_dir() or not pkl.is_file() or {p.name for p in out.iterdir()} != {"model.json", "model.safetensors"}:
        return False
    try:
        source = json.loads((out / "model.json").read_text()).get("source") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(source, dict) and source.get("sha256") == file_sha256(pkl)
