"""Side panels. Each module has TITLE (the window label, also the test engine's "//TITLE" reference), DOCK (the dock
space) and draw(app), which draws widgets that edit app.state or call app's actions. Order = tab order."""

from __future__ import annotations

from . import capture, dreamfusion, latent, model, render, training

PANELS = [model, latent, dreamfusion, render, capture, training]

__all__ = ["PANELS"]
