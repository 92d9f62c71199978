"""GL timing for `tristudio bench viewer` (run as a subprocess so core/ never imports GL): ray-march a baked grid of
a random-init generator in a hidden glfw window; one JSON line.

    tristudio bench gl-frames --preset small --grid 96 --size 256 --frames 30   (hidden: run by `bench viewer`)
"""

from __future__ import annotations

import time


def measure(preset: str = "small", grid: int = 96, size: int = 256, frames: int = 30) -> dict:
    """Median and minimum ms per GL frame of a `preset` generator baked to a grid^3 grid, drawn at size^2 px."""

    import imgui_bundle  # noqa: F401  (points pyGLFW at the bundled libglfw)

    glfw = __import__("glfw")
    from OpenGL import GL

    from tristudio.core.eg3d.bake import bake_grid
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.latent import LatentSpec
    from tristudio.viewer.model import random_model
    from tristudio.viewer.orbit import OrbitCamera

    from .gl import GridRaymarcher

    if not glfw.init():
        raise RuntimeError("glfw init failed (no display?)")
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    win = glfw.create_window(64, 64, "glbench", None, None)
    glfw.make_context_current(win)
    eng = GeneratorSession(random_model(preset))
    planes, _ = eng.planes(LatentSpec())
    grid = bake_grid(planes, eng.G.decoder, grid)
    rm = GridRaymarcher()
    rm.upload_grid(grid, "bench")
    rk = eng.G.rendering_kwargs
    n_samples = 2 * int(rk["depth_resolution"])
    cam = OrbitCamera()
    t0 = time.perf_counter()
    rm.draw(cam, (size, size), n_samples, rk["ray_start"], rk["ray_end"])
    GL.glFinish()
    first_ms = (time.perf_counter() - t0) * 1000  # includes Mesa's lazy shader compile (disk-cached later)
    times = []
    for i in range(frames):
        cam.orbit(5, 0)
        t = time.perf_counter()
        rm.draw(cam, (size, size), n_samples, rk["ray_start"], rk["ray_end"])
        GL.glFinish()
        times.append((time.perf_counter() - t) * 1000)
        del i
    times.sort()
    renderer = GL.glGetString(GL.GL_RENDERER).decode()
    glfw.terminate()
    return {
        "ms_median": times[len(times) // 2],
        "ms_min": times[0],
        "first_draw_ms": first_ms,
        "renderer": renderer,
        "samples": n_samples,
    }
