"""Single-scene fitting: posed reference views of a procedural scene (views.py), the optimisation loop (loop.py) and
held-out evaluation (evaluate.py). Used by `tristudio fit` and `tristudio bench representations`."""

from .evaluate import evaluate, psnr
from .loop import DEFAULTS, FitConfig, Fitter, fit
from .views import SceneSpec, Views, parse_scene, render_views

__all__ = [
    "DEFAULTS",
    "FitConfig",
    "Fitter",
    "fit",
    "evaluate",
    "psnr",
    "SceneSpec",
    "Views",
    "parse_scene",
    "render_views",
]
