"""A prior's own DreamFusion settings (its profile): what differs from DreamFusion's defaults for that prior.

tristudio's small-world prior (layout "pixel-clip", core/priors/layout.py) only ever saw the worlds' renders: white
background, the fixed light from above (core/worlds/render.py Shading.light_dir, ambient 0.35), 32 px. Rendered
otherwise (a coloured MLP background, a light at the camera) an object can hide its colour in the background and grow
noise the prior cannot see; and under SDS at DreamFusion's scale 100 it grows any object until it fills the scene box
("a red cube" becomes the box), while at 5 the shapes hold (measured on held-out prompts). Every other prior (Stable
Diffusion, DeepFloyd IF) gets DreamFusion's own settings.

`profile_for(prior)` is the one place that decides which profile a prior has; the guidance methods' own default scales
are stated in methods.METHODS (guidance.py's classes carry them) and a profile only overrides them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DreamFusionProfile", "DREAMFUSION", "SMALL_WORLD", "PROFILES", "profile_for", "AMBIENT"]

AMBIENT = {"camera": 0.1, "world": 0.35}  # ambient light per light model: DreamFusion's / the worlds' renders


@dataclass(frozen=True)
class DreamFusionProfile:
    title: str
    guidance_scales: dict[str, float] = field(default_factory=dict)  # method name -> scale, overriding its default
    background: str = "mlp"  # "mlp": DreamFusion's MLP of the ray direction | "white"
    light: str = "camera"  # "camera": a point light near the camera | "world": the worlds' fixed light
    max_resolution: int = 64  # training renders: the prior's own size, at most this
    lr_final_ratio: float = 1.0  # learning-rate decay (schedules.lr_factor): to lr * ratio at lr_decay_steps
    lr_decay_steps: int = 0  # 0: constant lr (DreamFusion's runs are 10-15k steps; their prior does not drift)
    lr_decay_start: int = 0  # constant lr up to this step


DREAMFUSION = DreamFusionProfile("DreamFusion")
# With the small-world prior the object is best near step 300 and, at a constant lr, then grows slabs and fog until it
# fills the box ("a yellow cube": chamfer to the cube 0.077 at 300, 0.22 at 600, 0.39 at 1000). Orientation (lambda 10),
# sparsity (0.1) or t_max annealed to 0.5 did not stop it; the lr decayed to 3% by step 1000 slowed it (the cube held,
# a blue cylinder still grew fog: 0.048 -> 0.106 at 1000); held to 200 and down to 1% at 400 it crept (cylinder 0.066 ->
# 0.074 at 1000). So the lr is held for the 200 steps that form the object, then decays by 10x every 100 steps to 0.1%
# at step 500: what the rest of the run can still move is about 6 full-lr steps' worth.
SMALL_WORLD = DreamFusionProfile(
    "small-world prior",
    guidance_scales={"sds": 5.0},
    background="white",
    light="world",
    lr_final_ratio=0.001,
    lr_decay_steps=500,
    lr_decay_start=200,
)
PROFILES = {"dreamfusion": DREAMFUSION, "small-world": SMALL_WORLD}
_BY_LAYOUT = {"pixel-clip": SMALL_WORLD}  # prior layout (core/priors/layout.py) -> its profile


def profile_for(prior=None) -> DreamFusionProfile:
    """The profile of `prior`: a loaded Prior, a prior folder (its layout is detected), a layout name, or None."""
    if prior is None:
        return DREAMFUSION
    if isinstance(prior, (str, os.PathLike)):
        from ..priors.layout import LAYOUTS, detect_layout

        name = str(prior)
        if name in LAYOUTS:
            return _BY_LAYOUT.get(name, DREAMFUSION)
        try:
            return _BY_LAYOUT.get(detect_layout(Path(name).expanduser()).name, DREAMFUSION)
        except (ValueError, OSError):  # not a prior folder (yet): DreamFusion's defaults
            return DREAMFUSION
    return _BY_LAYOUT.get(getattr(prior, "layout", None), DREAMFUSION)
