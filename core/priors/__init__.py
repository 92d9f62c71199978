"""Frozen diffusion priors and CLIP, loaded offline from local folders (diffusers / transformers layouts).

    load_prior(path, device="auto", dtype=None) -> Prior      SD 1.x/2.x, DeepFloyd IF stage I, tristudio pixel prior
    load_clip(path, device="auto") -> ClipModel                transformers CLIPModel folder
    clip_r_precision(clip, images, image_prompt_index, prompts, k=1) -> float
Tiny random folders of every layout for tests: tristudio.core.priors.testing.
"""

from .clip import ClipModel, load_clip
from .common import PriorLoadError
from .layout import LAYOUTS
from .load import load_prior
from .prior import NoisePrediction, Prior, PromptEmbeddings
from .rprecision import clip_r_precision, r_precision_from_similarity

__all__ = [
    "LAYOUTS",
    "ClipModel",
    "NoisePrediction",
    "Prior",
    "PriorLoadError",
    "PromptEmbeddings",
    "clip_r_precision",
    "load_clip",
    "load_prior",
    "r_precision_from_similarity",
]
