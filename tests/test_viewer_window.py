"""The whole window after a camera drag, read back from the window's own framebuffer (GL framebuffer 0, what the
screen shows) in the runner's before-swap callback: the viewport must show the model and the side panels must still
be drawn. Issue 14: the GL fast path restored its own framebuffer after the first ray-march, so ImGui drew off screen
and the window stayed black after the first left-drag; these tests fail on that code."""

from __future__ import annotations

import numpy as np
import pytest
from test_viewer_gui import display, make_app, run, settle, tiny_G, wait  # noqa: F401  (fixtures)

pytestmark = pytest.mark.gui


def run_with_window_shots(app, body):
    """Run `body(ctx, app, shoot)`; shoot() returns the next frame's window pixels (H, W, 3) uint8, rows top down."""
    from OpenGL import GL

    shots: dict = {"want": False, "img": None}
    rp = app.runner_params()
    before_swap = rp.callbacks.before_swap

    def grab():
        before_swap()
        if not shots["want"]:
            return
        shots["want"] = False
        from imgui_bundle import imgui

        io = imgui.get_io()
        w = int(io.display_size.x * io.display_framebuffer_scale.x)
        h = int(io.display_size.y * io.display_framebuffer_scale.y)
        prev = int(GL.glGetIntegerv(GL.GL_READ_FRAMEBUFFER_BINDING))
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)  # the window, whatever the app left bound
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, prev)
        shots["img"] = np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()

    rp.callbacks.before_swap = grab
    app.runner_params = lambda: rp

    def shoot(ctx):
        shots["want"], shots["img"] = True, None
        wait(ctx, lambda: shots["img"] is not None, 10, "a window capture")
        return shots["img"]

    run(app, lambda ctx, app: body(ctx, app, shoot))


def panel_region(img):
    """The right-hand dock (the side panels: 34% of the width), below the first tab bar."""
    h, w, _ = img.shape
    return img[30 : h - 30, int(w * 0.70) : w - 4].astype(float)


def viewport_region(app, img):
    x, y, w, h = (int(round(v)) for v in app.image_rect)
    return img[y + 2 : y + h - 2, x + 2 : x + w - 2].astype(float)


def assert_window_alive(app, img, ref, what):
    """`img` (after the drag) still shows the panels as in `ref` (before it) and a non-black viewport."""
    assert img.mean() > 15, f"{what}: the captured window is black (mean {img.mean():.1f})"
    p, p0 = panel_region(img), panel_region(ref)
    # panels: text and widgets (not a flat fill), and the same layout as before the drag
    assert p.std() > 12, f"{what}: the side panels are not drawn (panel std {p.std():.1f})"
    assert np.abs(p.mean() - p0.mean()) < 12, (
        f"{what}: the side panels changed (mean {p0.mean():.1f} -> {p.mean():.1f})"
    )
    corr = np.corrcoef(p.mean(-1).ravel(), p0.mean(-1).ravel())[0, 1]
    assert corr > 0.5, f"{what}: the side panels do not look as before the drag (corr {corr:.2f})"
    v = viewport_region(app, img)
    frac_black = float((v.max(-1) < 8).mean())
    assert frac_black < 0.98, f"{what}: the viewport is black ({100 * frac_black:.0f}% black pixels)"


def test_default_settings_drag_keeps_the_window_drawn(tiny_G, tmp_path):  # noqa: F811
    """Default ViewerState (GL grid fast path, final output): drag the viewport, let go, wait for the full frame."""
    from tristudio.viewer.app import ViewerApp
    from tristudio.viewer.generator_session import GeneratorSession
    from tristudio.viewer.state import CaptureState, ViewerState

    app = ViewerApp(
        engine=GeneratorSession(tiny_G, name="tiny"),
        state=ViewerState(capture=CaptureState(capture_dir=str(tmp_path / "captures"))),
        window_size=(960, 640),
    )
    seen = {}

    def body(ctx, app, shoot):
        settle(ctx, app)
        wait(ctx, lambda: app.eg3d.grid_ready(), 120, "the baked grid")
        seen["before"] = shoot(ctx)
        gl0 = app.probes.gl_frames
        ctx.item_drag_with_delta("//Viewport/##canvas", (120, 20))
        seen["gl_frames"] = app.probes.gl_frames - gl0
        seen["during"] = shoot(ctx)
        settle(ctx, app)
        for _ in range(5):
            ctx.yield_()
        seen["after"] = shoot(ctx)

    run_with_window_shots(app, body)
    assert seen["gl_frames"] > 0, "the drag did not use the GL fast path (the default)"
    assert_window_alive(app, seen["before"], seen["before"], "before the drag")
    assert_window_alive(app, seen["during"], seen["before"], "while dragging")
    assert_window_alive(app, seen["after"], seen["before"], "after the drag")


def test_every_fast_path_and_output_keeps_the_window_drawn(tiny_G, tmp_path):  # noqa: F811
    from tristudio.viewer.images import OUTPUTS

    app = make_app(tiny_G, tmp_path, fast_path="grid", grid_resolution=32, background="grey")
    failures = []

    def body(ctx, app, shoot):
        settle(ctx, app)
        ref = shoot(ctx)
        for fast_path in ("grid", "torch"):
            for output in OUTPUTS:
                app.eg3d.state.fast_path, app.eg3d.state.output = fast_path, output
                settle(ctx, app)
                if fast_path == "grid":
                    wait(ctx, lambda: app.eg3d.grid_ready(), 120, "the baked grid")
                ctx.item_drag_with_delta("//Viewport/##canvas", (60, 10))
                settle(ctx, app)
                img = shoot(ctx)
                try:
                    assert_window_alive(app, img, ref, f"{fast_path} / {output}")
                except AssertionError as exc:
                    failures.append(str(exc))

    run_with_window_shots(app, body)
    assert not failures, "\n".join(failures)


def test_capture_confirmation_wraps_at_the_panel_edge(tiny_G, tmp_path):  # noqa: F811
    """Issue 14: Capture's "saved <path>" was one clipped line. With a long folder it must wrap onto several lines:
    the green text's rows in the lower dock span more than one line height."""
    long_dir = tmp_path / ("a_long_capture_folder_name_" * 4)
    app = make_app(tiny_G, tmp_path, capture_dir=str(long_dir), save_resolution=32)
    seen = {}

    def body(ctx, app, shoot):
        settle(ctx, app)
        ctx.window_focus("//Capture")
        ctx.item_click("//Capture/Save render")
        wait(ctx, lambda: app.jobs.current is not None and app.jobs.current.done, 60, "save render")
        ctx.mouse_move("//Capture/Export mesh")
        ctx.mouse_wheel((0.0, -20.0))  # scroll the panel to its end (the message is under the buttons)
        for _ in range(3):
            ctx.yield_()
        seen["img"] = shoot(ctx)
        seen["line"] = 17.0  # ImGui's default font: 13 px glyphs, 17 px line spacing

    run_with_window_shots(app, body)
    img = seen["img"].astype(int)
    h, w, _ = img.shape
    dock = img[int(h * 0.5) : h - 24, int(w * 0.67) :]
    green = (dock[..., 1] > 170) & (dock[..., 0] < 160) & (dock[..., 2] < 160)
    rows = np.flatnonzero(green.any(axis=1))
    assert rows.size, "no green confirmation text in the Capture panel"
    assert app.jobs.current.message.startswith("saved ") and len(app.jobs.current.message) > 100
    assert rows.max() - rows.min() > 1.5 * seen["line"], f"the confirmation spans {rows.max() - rows.min()} px rows"
