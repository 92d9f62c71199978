"""Capture jobs (run in the JobWorker thread; torch + files only, no GL): hi-res render PNG, orbit video, mesh."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tristudio.core.io.images import save_png

from .generator_session import GeneratorSession, RenderSettings
from .orbit import OrbitCamera
from .workers import Job

__all__ = ["render_image", "save_render", "orbit_video", "export_mesh", "even"]


def even(n: int) -> int:
    """libx264 / yuv420p needs even frame sides."""
    n = max(2, int(n))
    return n + (n % 2)


def render_image(
    engine: GeneratorSession, spec, camera: OrbitCamera, settings: RenderSettings, size: int
) -> np.ndarray:
    """(size, size, 3) uint8 of the current output. Neural outputs render at `size`; the super-resolved image has
    the model's own size and is resampled (bilinear) when `size` differs. `engine`: the EG3D GeneratorSession, or
    anything with its render() signature (the DreamFusion view)."""
    from PIL import Image

    if getattr(engine, "renders_any_size", False):  # e.g. the DreamFusion object: render at the asked size
        res = int(size)
    else:
        res = None if settings.output == "final" else int(size)
    rgb = engine.render(spec, camera, settings, res).rgba[..., :3]
    if rgb.shape[0] != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return rgb


def save_render(
    job: Job, engine: GeneratorSession, spec, camera: OrbitCamera, settings: RenderSettings, size: int, path: Path
) -> str:
    job.step(0.0, f"rendering {size} px")
    save_png(path, render_image(engine, spec, camera, settings, size))
    job.result_path = str(path)
    return f"saved {path}"


def orbit_video(
    job: Job,
    engine: GeneratorSession,
    spec,
    camera: OrbitCamera,
    settings: RenderSettings,
    frames: int,
    fps: int,
    size: int,
    path: Path,
) -> str:
    """A full turn of yaw around the current pose, `frames` frames, H.264 MP4."""
    import imageio.v2 as imageio

    size = even(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(
        str(path), fps=int(fps), codec="libx264", macro_block_size=2, quality=8, ffmpeg_params=["-preset", "veryfast"]
    )
    try:
        for i in range(int(frames)):
            cam = camera.copy()
            cam.yaw = camera.yaw + 2 * math.pi * i / frames
            writer.append_data(render_image(engine, spec, cam, settings, size))
            job.step((i + 1) / frames, f"video frame {i + 1}/{frames}")
    except BaseException:
        writer.close()
        path.unlink(missing_ok=True)
        raise
    writer.close()
    job.result_path = str(path)
    return f"saved {path} ({frames} frames, {size}x{size}, {fps} fps)"


def export_mesh(job: Job, engine: GeneratorSession, spec, resolution: int, level: float | None, path: Path) -> str:
    """core/eg3d/bake.py's triplane_mesh (marching cubes of a baked grid, vertex colours from the field), saved by
    core/mesh.py's save_mesh (.ply / .obj / .glb by the suffix, atomically). level None: the level whose silhouette is
    the render's (silhouette_level)."""
    from tristudio.core.eg3d.bake import silhouette_level, triplane_mesh
    from tristudio.core.mesh import save_mesh

    planes, _ = engine.planes(spec)
    how = ""
    if level is None:
        match = lambda f: job.step(0.1 * f, "matching the render's silhouette")  # noqa: E731  (Cancel: raises)
        level, how = silhouette_level(engine.G, planes, progress=match), " (automatic)"
    box = float(engine.G.rendering_kwargs["box_warp"])
    mesh = triplane_mesh(
        planes, engine.G.decoder, level, resolution, box, lambda f: job.step(0.1 + 0.8 * f, f"baking {resolution}^3")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_mesh(mesh, path)
    job.result_path = str(path)
    job.extra = {
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "watertight": bool(mesh.is_watertight),
        "level": level,
    }
    return (
        f"saved {path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, level {level:.3g}{how}, "
        f"{'watertight' if mesh.is_watertight else 'not watertight'}"
    )


class CaptureActions:
    """The Capture panel's actions on the scene on screen (`scene()`): each starts one background job (one at a time)
    and says what happened in `state.message`; Save GUI is read back from the window before the next buffer swap."""

    def __init__(self, state, jobs, scene, probes):
        self.state = state  # CaptureState
        self.jobs = jobs  # JobWorker
        self.scene = scene  # () -> the scene on screen
        self.probes = probes
        self.gui_shot_request: Path | None = None

    def _start(self, name: str, fn) -> bool:
        from .state import Message

        if self.jobs.running:
            self.state.message = Message("another capture job is running", error=True)
            return False
        return self.jobs.start(Job(name, fn))

    def _source(self):
        from .scene import CaptureUnavailable
        from .state import Message

        try:
            return self.scene().capture_source()
        except CaptureUnavailable as exc:
            self.state.message = Message(str(exc), error=True)
            return None

    def save_render(self) -> Path | None:
        src = self._source()
        if src is None:
            return None
        source, spec, settings = src
        path, cam = self.state.path("render", "png"), self.scene().state.camera.copy()
        size = int(self.state.save_resolution)
        self._start("save render", lambda job: save_render(job, source, spec, cam, settings, size, path))
        return path

    def save_gui(self) -> Path:
        self.gui_shot_request = self.state.path("gui", "png")
        return self.gui_shot_request

    def orbit_video(self) -> Path | None:
        src = self._source()
        if src is None:
            return None
        source, spec, settings = src
        s = self.state
        path, cam = s.path("orbit", "mp4"), self.scene().state.camera.copy()
        frames, fps, size = int(s.video_frames), int(s.video_fps), int(s.video_resolution)
        self._start("orbit video", lambda job: orbit_video(job, source, spec, cam, settings, frames, fps, size, path))
        return path

    def export_mesh(self) -> Path | None:
        from .scene import CaptureUnavailable
        from .state import Message

        path = self.state.path("mesh", self.state.mesh_format)
        try:
            fn = self.scene().mesh_job(int(self.state.mesh_resolution), path)
        except CaptureUnavailable as exc:
            self.state.message = Message(str(exc), error=True)
            return None
        self._start("mesh export", fn)
        return path

    def before_swap(self) -> None:
        """Save GUI: read the window (framebuffer 0) once the frame is drawn (GUI thread)."""
        from .state import Message

        if self.gui_shot_request is None:
            return
        from imgui_bundle import imgui

        from .gl import read_framebuffer

        path, self.gui_shot_request = self.gui_shot_request, None
        try:
            io = imgui.get_io()
            w, h = (int(v) for v in io.display_size)
            fb = io.display_framebuffer_scale
            save_png(
                path, np.ascontiguousarray(read_framebuffer(0, 0, int(w * fb.x), int(h * fb.y), framebuffer=0)[..., :3])
            )
            self.probes.gui_shots.append(path)
            self.state.message = Message(f"saved {path}")
            self.state.last_capture = str(path)
        except Exception as exc:
            self.state.message = Message(f"save GUI failed: {type(exc).__name__}: {exc}", error=True)
