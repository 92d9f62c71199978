"""`tristudio generate`: images, depth maps, tri-planes, orbit videos and meshes from an EG3D generator."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from tristudio.cli.options import (
    mesh_format_option,
    mesh_option,
    mesh_resolution_option,
    needs_flag,
    threads_option,
    trunc_option,
)
from tristudio.core.threads import apply_threads

MAX_FPS = 240  # frames per second an MP4 player shows (the viewer's captures stop at 120)


def generate(
    ctx: typer.Context,
    model: Path = typer.Option(None, help="EG3D network pickle or tristudio model folder (default: the shipped model)"),
    seeds: str = typer.Option("0-7", help="seed list, e.g. '0-15' or '1,5,9' (seeds 0 .. 2**32 - 1)"),
    trunc: float = trunc_option(0.7),
    trunc_cutoff: int = typer.Option(14, help="truncate the first N ws"),
    yaw: float = typer.Option(0.0, help="view yaw in degrees (0 = frontal, > 0 camera towards +x)"),
    pitch: float = typer.Option(0.0, help="view pitch in degrees (> 0 from above)"),
    fov: float = typer.Option(18.837, help="diagonal field of view in degrees"),
    resolution: int = typer.Option(None, help="neural rendering resolution (default: the model's)"),
    out: Path = typer.Option(Path("out/generate"), help="output folder"),
    planes: bool = typer.Option(False, "--planes", help="also save each seed's tri-planes (.safetensors)"),
    video: bool = typer.Option(False, "--video", help="also write an orbit MP4 per seed"),
    frames: int = typer.Option(120, help="video frames"),
    fps: int = typer.Option(30, help=f"video frame rate (1 .. {MAX_FPS})"),
    mesh: bool = mesh_option(),
    mesh_format: str = mesh_format_option(),
    mesh_resolution: int = mesh_resolution_option(128),
    mesh_level: float = typer.Option(
        None, help="raw density of the mesh's surface (default: the level whose silhouette is the render's)"
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    threads: str = threads_option(),
) -> None:
    """Generate per-seed images and depth maps, and a grid of the first 64 (optionally tri-planes, orbit videos and
    meshes)."""
    from rich.console import Console
    from rich.progress import Progress

    from tristudio.cli.errors import at_least, clean_errors, esc, fail, finite, out_folder
    from tristudio.core.eg3d.sampling import parse_seeds

    try:
        seed_list = parse_seeds(seeds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--seeds") from None
    finite(trunc, "--trunc")
    finite(yaw, "--yaw")
    finite(pitch, "--pitch")
    at_least(trunc_cutoff, 0, "--trunc-cutoff")
    finite(fov, "--fov")
    if not 0 < fov < 180:
        raise typer.BadParameter(f"{fov} is not a field of view in (0, 180) degrees", param_hint="--fov")
    at_least(resolution, 8, "--resolution")
    if resolution is not None and resolution > 512:
        raise typer.BadParameter(f"{resolution} is above the maximum 512", param_hint="--resolution")
    at_least(frames, 1, "--frames")
    if at_least(fps, 1, "--fps") > MAX_FPS:  # a million wrote an MP4 of fps 0 and duration 0
        raise typer.BadParameter(f"{fps} is above the maximum {MAX_FPS}", param_hint="--fps")
    finite(mesh_level, "--mesh-level")
    needs_flag(ctx, "--mesh", mesh, "mesh_format", "mesh_resolution", "mesh_level")
    needs_flag(ctx, "--video", video, "frames", "fps")
    out_folder(out)
    console = Console()
    from tristudio.core.device import resolve_device
    from tristudio.core.eg3d.load import load_generator

    apply_threads(threads)
    with clean_errors(RuntimeError):
        dev = resolve_device(device)
        G = load_generator(model, device=dev).eval()

    with clean_errors():
        keep = video or mesh
        results = _write(
            console, G, seed_list, dev, trunc, trunc_cutoff, yaw, pitch, fov, resolution, out, planes, keep
        )
    if video:
        with clean_errors(), Progress(console=console) as progress:
            _videos(G, progress, results, seed_list, frames, fps, fov, resolution, dev, out)
        console.print(f"wrote {len(seed_list)} orbit videos to {esc(out)}")
    if mesh:
        with clean_errors(), Progress(console=console) as progress:
            failed = _meshes(G, progress, results, seed_list, mesh_format, mesh_resolution, mesh_level, dev, out)
        if failed:
            fail(f"no mesh for {len(failed)} of {len(seed_list)} seeds: " + "; ".join(failed))


GRID_SEEDS = 64  # grid.png / depth_grid.png show the first 64 seeds (every seed has its own PNGs)


def _write(console, G, seed_list, dev, trunc, trunc_cutoff, yaw, pitch, fov, resolution, out, planes, keep):
    """Render each seed and write its image, depth map (and tri-planes) at once, so Ctrl-C keeps the seeds done (and
    says so); then the grids of the first GRID_SEEDS. Depth maps share one range, the camera's ray_start .. ray_end
    (near = bright), so they compare across seeds and runs. Returns each seed's {planes, ws} when `keep` (the videos
    and meshes need them), else Nones: memory does not grow with the seed count."""
    import numpy as np
    from rich.progress import Progress

    from tristudio.cli.errors import esc
    from tristudio.core.eg3d.sampling import generate as run_generate
    from tristudio.core.io.checkpoint import save_checkpoint
    from tristudio.core.io.images import depth_to_uint8, make_grid, save_png, to_uint8

    earlier = out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith("."))
    out.mkdir(parents=True, exist_ok=True)
    near, far = (G.rendering_kwargs.get(k) for k in ("ray_start", "ray_end"))
    span = (near, far) if all(isinstance(v, (int, float)) for v in (near, far)) else None  # "auto": the first seed's
    images, depths, kept, done = [], [], [], 0  # the grids' first GRID_SEEDS (H, W, C) uint8
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("generating", total=len(seed_list))
            for s in seed_list:
                r = run_generate(
                    G, [s], trunc, trunc_cutoff, math.radians(yaw), math.radians(pitch), fov, resolution, device=dev
                )
                d = r["image_depth"]
                span = span or (float(d.min()), float(d.max()))
                image, depth = to_uint8(r["image"])[0], depth_to_uint8(d, *span)[0]
                save_png(out / f"seed{s:04d}.png", image)
                save_png(out / f"seed{s:04d}_depth.png", depth)
                if planes:
                    meta = {"format": "tristudio-triplanes", "seed": s, "truncation_psi": trunc}
                    meta.update(shape=list(r["planes"].shape), axes="xy, xz, zx (EG3D)")
                    save_checkpoint(out, {"planes": r["planes"], "ws": r["ws"]}, meta, name=f"seed{s:04d}_planes")
                if len(images) < GRID_SEEDS:
                    images.append(image)
                    depths.append(depth)
                kept.append({"planes": r["planes"], "ws": r["ws"]} if keep else None)
                done += 1
                progress.advance(task)
    except KeyboardInterrupt:
        before = "; its other files are from before this run" if earlier else ""
        console.print(f"interrupted: {esc(out)} holds the images of the first {done} of {len(seed_list)} seeds{before}")
        raise
    save_png(out / "grid.png", make_grid(np.stack(images)))
    save_png(out / "depth_grid.png", make_grid(np.stack(depths)))
    console.print(f"wrote {len(seed_list)} images, depth maps and grids to {esc(out)}")
    return kept


def _videos(G, progress, results, seed_list, frames, fps, fov, resolution, dev, out):
    from tristudio.core.eg3d.sampling import orbit_frames
    from tristudio.core.io.images import to_uint8
    from tristudio.core.io.video import write_video

    for i, s in enumerate(seed_list):
        task = progress.add_task(f"orbit seed {s}", total=frames)
        p = results[i]["planes"].to(dev)
        w = results[i]["ws"].to(dev)
        orbit = orbit_frames(G, p, w, frames, fov, neural_rendering_resolution=resolution)
        stream = (to_uint8(f)[0] for f in orbit)
        write_video(out / f"seed{s:04d}_orbit.mp4", stream, fps=fps, on_frame=lambda _i, t=task: progress.advance(t))


def _meshes(G, progress, results, seed_list, fmt, resolution, level, dev, out):
    from tristudio.cli.errors import esc
    from tristudio.core.eg3d.bake import silhouette_level, triplane_mesh
    from tristudio.core.mesh import save_mesh

    box, failed = float(G.rendering_kwargs["box_warp"]), []
    for i, s in enumerate(seed_list):
        task = progress.add_task(f"mesh seed {s}", total=1.0)
        planes = results[i]["planes"].to(dev)
        try:
            at = silhouette_level(G, planes) if level is None else level
            bar = lambda f, t=task: progress.update(t, completed=f)  # noqa: E731
            mesh = triplane_mesh(planes, G.decoder, at, resolution, box, bar)
        except ValueError as exc:  # this seed's field never reaches the level (or draws nothing): the others go on
            failed.append(f"seed {s}: {exc}")
            continue
        path = save_mesh(mesh, out / f"seed{s:04d}.{fmt}")
        how = "" if level is not None else " (automatic: the render's silhouette)"
        progress.console.print(
            esc(f"{path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, level {at:.3g}{how}"), soft_wrap=True
        )
    return failed
