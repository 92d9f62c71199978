"""OpenGL pieces of the viewer (GUI thread only): RGBA8 textures, shader programs from tristudio.shaders, and the
baked-grid ray-marcher drawn into an off-screen framebuffer whose colour texture the viewport shows."""

from __future__ import annotations

from contextlib import contextmanager
from importlib import resources

import numpy as np
from OpenGL import GL

__all__ = ["saved_gl_state", "Texture2D", "load_shader_source", "compile_program", "GridRaymarcher", "read_framebuffer"]


_CAPS = (GL.GL_BLEND, GL.GL_SCISSOR_TEST, GL.GL_DEPTH_TEST, GL.GL_CULL_FACE, GL.GL_STENCIL_TEST)


@contextmanager
def saved_gl_state():
    """Save the GL state the viewer's own drawing touches and restore it on exit (also after an exception): draw and
    read framebuffers, viewport, program, VAO, active texture unit and unit 0's 2D / 3D textures, the enabled
    capabilities in _CAPS, the blend equation and functions, and the pack / unpack alignments. Read *before* anything
    is bound, so what is restored is the caller's (ImGui's) state."""
    get = GL.glGetIntegerv
    draw_fbo, read_fbo = int(get(GL.GL_DRAW_FRAMEBUFFER_BINDING)), int(get(GL.GL_READ_FRAMEBUFFER_BINDING))
    viewport = [int(v) for v in get(GL.GL_VIEWPORT)]
    program, vao = int(get(GL.GL_CURRENT_PROGRAM)), int(get(GL.GL_VERTEX_ARRAY_BINDING))
    active = int(get(GL.GL_ACTIVE_TEXTURE))
    GL.glActiveTexture(GL.GL_TEXTURE0)
    tex2d, tex3d = int(get(GL.GL_TEXTURE_BINDING_2D)), int(get(GL.GL_TEXTURE_BINDING_3D))
    GL.glActiveTexture(active)
    caps = {c: bool(GL.glIsEnabled(c)) for c in _CAPS}
    blend = [int(get(p)) for p in _BLEND_PARAMS]
    pack, unpack = int(get(GL.GL_PACK_ALIGNMENT)), int(get(GL.GL_UNPACK_ALIGNMENT))
    try:
        yield
    finally:
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, draw_fbo)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, read_fbo)
        GL.glViewport(*viewport)
        GL.glUseProgram(program)
        GL.glBindVertexArray(vao)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex2d)
        GL.glBindTexture(GL.GL_TEXTURE_3D, tex3d)
        GL.glActiveTexture(active)
        for c, on in caps.items():
            (GL.glEnable if on else GL.glDisable)(c)
        GL.glBlendEquationSeparate(blend[0], blend[1])
        GL.glBlendFuncSeparate(blend[2], blend[3], blend[4], blend[5])
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, pack)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, unpack)


_BLEND_PARAMS = (
    GL.GL_BLEND_EQUATION_RGB,
    GL.GL_BLEND_EQUATION_ALPHA,
    GL.GL_BLEND_SRC_RGB,
    GL.GL_BLEND_DST_RGB,
    GL.GL_BLEND_SRC_ALPHA,
    GL.GL_BLEND_DST_ALPHA,
)


class Texture2D:
    """An RGBA8 texture; `upload` takes (H, W, 4) uint8 with rows top to bottom (shown with uv (0,0)-(1,1))."""

    def __init__(self, nearest: bool = True):
        self.id = int(GL.glGenTextures(1))
        self.size = (0, 0)  # (w, h)
        f = GL.GL_NEAREST if nearest else GL.GL_LINEAR
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, f)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, f)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)

    def allocate(self, w: int, h: int) -> None:
        with saved_gl_state():
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        self.size = (w, h)

    def upload(self, rgba: np.ndarray) -> None:
        if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
            raise ValueError(f"Texture2D.upload: expected (H, W, 4) uint8, got {rgba.shape} {rgba.dtype}")
        h, w = rgba.shape[:2]
        data = np.ascontiguousarray(rgba)
        with saved_gl_state():
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            if (w, h) != self.size:
                GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, data)
                self.size = (w, h)
            else:
                GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, data)

    def delete(self) -> None:
        GL.glDeleteTextures([self.id])


def load_shader_source(name: str) -> str:
    return resources.files("tristudio.shaders").joinpath(name).read_text()


def _compile(kind, src: str, name: str) -> int:
    sh = GL.glCreateShader(kind)
    GL.glShaderSource(sh, src)
    GL.glCompileShader(sh)
    if not GL.glGetShaderiv(sh, GL.GL_COMPILE_STATUS):
        log = GL.glGetShaderInfoLog(sh)
        raise RuntimeError(f"shader {name} failed to compile: {log.decode() if isinstance(log, bytes) else log}")
    return sh


def compile_program(vert_name: str, frag_name: str) -> int:
    vs = _compile(GL.GL_VERTEX_SHADER, load_shader_source(vert_name), vert_name)
    fs = _compile(GL.GL_FRAGMENT_SHADER, load_shader_source(frag_name), frag_name)
    prog = GL.glCreateProgram()
    GL.glAttachShader(prog, vs)
    GL.glAttachShader(prog, fs)
    GL.glLinkProgram(prog)
    GL.glDeleteShader(vs)
    GL.glDeleteShader(fs)
    if not GL.glGetProgramiv(prog, GL.GL_LINK_STATUS):
        log = GL.glGetProgramInfoLog(prog)
        raise RuntimeError(f"shader program {vert_name}+{frag_name} failed to link: {log}")
    return int(prog)


def read_framebuffer(x: int, y: int, w: int, h: int, framebuffer: int | None = None) -> np.ndarray:
    """(h, w, 3) uint8 of `framebuffer` (None: the bound read framebuffer; 0: the window), rows top to bottom."""
    with saved_gl_state():
        if framebuffer is not None:
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, int(framebuffer))
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(x, y, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()


class GridRaymarcher:
    """Draws a baked grid (see core/eg3d/bake.py) from an orbit camera into its own RGBA8 texture."""

    def __init__(self):
        self.program = compile_program("fullscreen.vert.glsl", "grid_raymarch.frag.glsl")
        self.vao = int(GL.glGenVertexArrays(1))
        self.grid_tex = int(GL.glGenTextures(1))
        self.grid_key = None  # what the uploaded grid was baked from
        self.grid_resolution = 0
        self.target = Texture2D(nearest=True)
        self.fbo = int(GL.glGenFramebuffers(1))
        self._loc = {
            n: GL.glGetUniformLocation(self.program, n)
            for n in (
                "grid",
                "cam_rot",
                "cam_origin",
                "focal",
                "resolution",
                "ray_start",
                "ray_end",
                "n_samples",
                "box_warp",
                "mode",
                "background",
                "depth_range",
            )
        }

    def upload_grid(self, grid, key) -> None:
        """grid: (R, R, R, 4) float32 [z][y][x] (torch or numpy)."""
        arr = np.ascontiguousarray(np.asarray(grid, dtype=np.float32))
        with saved_gl_state():
            r = arr.shape[0]
            GL.glBindTexture(GL.GL_TEXTURE_3D, self.grid_tex)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 4)
            GL.glTexImage3D(GL.GL_TEXTURE_3D, 0, GL.GL_RGBA16F, r, r, r, 0, GL.GL_RGBA, GL.GL_FLOAT, arr)
            for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
                GL.glTexParameteri(GL.GL_TEXTURE_3D, p, GL.GL_LINEAR)
            for p in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T, GL.GL_TEXTURE_WRAP_R):
                GL.glTexParameteri(GL.GL_TEXTURE_3D, p, GL.GL_CLAMP_TO_EDGE)
        self.grid_key, self.grid_resolution = key, r

    def draw(
        self,
        camera,
        size: tuple[int, int],
        n_samples: int,
        ray_start: float,
        ray_end: float,
        box_warp: float = 1.0,
        mode: int = 0,
        background=(0.0, 0.0, 0.0),
        depth_range=(2.25, 3.3),
    ) -> Texture2D:
        w, h = int(size[0]), int(size[1])
        with saved_gl_state():  # everything below is undone on exit, so ImGui's next draw sees its own state
            if self.target.size != (w, h):
                self.target.allocate(w, h)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
                GL.glFramebufferTexture2D(
                    GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.target.id, 0
                )
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
            GL.glViewport(0, 0, w, h)
            for c in _CAPS:
                GL.glDisable(c)
            GL.glUseProgram(self.program)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_3D, self.grid_tex)
            right, down, forward = camera.axes()
            rot = np.array([right, down, forward], dtype=np.float32)  # rows = columns of the 3x3 -> transpose=False
            L = self._loc
            GL.glUniform1i(L["grid"], 0)
            GL.glUniformMatrix3fv(L["cam_rot"], 1, GL.GL_FALSE, rot)
            GL.glUniform3f(L["cam_origin"], *camera.position())
            GL.glUniform1f(L["focal"], camera.focal)
            GL.glUniform2f(L["resolution"], float(w), float(h))
            GL.glUniform1f(L["ray_start"], ray_start)
            GL.glUniform1f(L["ray_end"], ray_end)
            GL.glUniform1i(L["n_samples"], max(2, int(n_samples)))
            GL.glUniform1f(L["box_warp"], box_warp)
            GL.glUniform1i(L["mode"], int(mode))
            GL.glUniform3f(L["background"], *background)
            GL.glUniform2f(L["depth_range"], *depth_range)
            GL.glBindVertexArray(self.vao)
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        return self.target

    def read(self) -> np.ndarray:
        """The last drawn image as (H, W, 4) uint8, rows top to bottom (tests, benchmarks)."""
        w, h = self.target.size
        with saved_gl_state():
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
            data = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(data, np.uint8).reshape(h, w, 4).copy()  # GL row 0 = image top (see the shader)
