"""Side panels. Each module has TITLE (the window label, also the test engine's "//TITLE" reference), DOCK (the dock
space) and draw(state, actions): it draws widgets that edit `state` (a scene's or the capture settings) and calls
`actions` (the scene that owns the state, or the capture actions) for its buttons; it never sees the app
(app.panel_args says which pair each panel gets). Order = tab order."""

from __future__ import annotations

from . import capture, dreamfusion, latent, model, render, training

PANELS = [model, latent, dreamfusion, render, capture, training]

__all__ = ["PANELS"]
