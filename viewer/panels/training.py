"""Training panel: the live plot of the DreamFusion optimisation (loss and guidance gradient norm over steps, implot)
with its state and steps/s; in the lower dock so the plot is visible beside the DreamFusion panel's controls."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from .dreamfusion import draw_status
from .widgets import DIM, error_text

TITLE = "Training"
DOCK = "SideLow"

MAX_PLOT_POINTS = 1500  # longer histories are decimated for drawing


def draw(s, scene) -> None:
    """s: DreamFusionState; scene: DreamFusionScene (its session, probes)."""
    sess = scene.session
    if sess is None:
        imgui.text_colored(DIM, "no DreamFusion optimisation: press Start in the DreamFusion panel")
        return
    if sess.worker.error:  # one state at a time: the error replaces the status line
        error_text(f"DreamFusion failed: {sess.worker.error}")
    else:
        draw_status(sess)
    xs, loss, gnorm = sess.worker.series("step", "loss", "guidance_grad_norm")
    if len(xs) > MAX_PLOT_POINTS:
        k = int(np.ceil(len(xs) / MAX_PLOT_POINTS))
        xs, loss, gnorm = xs[::k], loss[::k], gnorm[::k]
    if len(xs):
        imgui.text_colored(DIM, f"last: loss {loss[-1]:.4g}, guidance grad norm {gnorm[-1]:.4g}")
    height = max(120.0, imgui.get_content_region_avail().y - 4)
    if implot.begin_plot("##dreamfusion loss", imgui.ImVec2(-1, height)):
        fit = implot.AxisFlags_.auto_fit
        implot.setup_axes("step", "loss", fit, fit)
        implot.setup_axis(implot.ImAxis_.y2, "guidance grad norm", implot.AxisFlags_.aux_default | fit)
        implot.setup_legend(implot.Location_.north, implot.LegendFlags_.horizontal | implot.LegendFlags_.outside)
        if len(xs):
            implot.set_axes(implot.ImAxis_.x1, implot.ImAxis_.y1)
            implot.plot_line("loss", xs, loss)
            implot.set_axes(implot.ImAxis_.x1, implot.ImAxis_.y2)
            implot.plot_line("grad norm", xs, gnorm)
            scene.services.probes.df_plotted = len(xs)
        implot.end_plot()
