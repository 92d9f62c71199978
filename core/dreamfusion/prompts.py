"""View-dependent prompts (DreamFusion): the view word of each training camera appended to the prompt.

"a red cube" seen from yaw 170 deg becomes "a red cube, back view" (core/worlds/captions.py holds the view words and
their thresholds, shared with the captions the small-world prior was trained on).
"""

from __future__ import annotations

from torch import Tensor

from ..worlds.captions import VIEW_WORDS, view_word

__all__ = ["view_prompts", "all_view_prompts", "check_prompt"]


def check_prompt(prompt: str) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise ValueError("empty prompt: give a text description, e.g. 'a red cube'")
    return prompt


def view_prompts(prompt: str, yaw: Tensor, pitch: Tensor) -> list[str]:
    """One prompt per camera: '<prompt>, <view word>'."""
    words = view_word(yaw, pitch)
    words = [words] if isinstance(words, str) else words
    return [f"{prompt}, {w}" for w in words]


def all_view_prompts(prompt: str) -> dict[str, str]:
    """The four view-dependent variants of a prompt (embedded once, looked up per step)."""
    return {w: f"{prompt}, {w}" for w in VIEW_WORDS}
