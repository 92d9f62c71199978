"""The prompt of a DreamFusion run: `check_prompt` (not empty) and `fit_view_prompts`, its view-dependent variants.

"a red cube" seen from yaw 170 deg becomes "a red cube, back view" (core/worlds/captions.py holds the view words and
their thresholds, shared with the captions the small-world prior was trained on; optimize.DreamFusion.prompts_for
picks each training camera's variant).
"""

from __future__ import annotations

import re

__all__ = ["check_prompt", "fit_view_prompts", "run_name"]


def check_prompt(prompt: str) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise ValueError("empty prompt: give a text description, e.g. 'a red cube'")
    return prompt


def run_name(prompt: str, limit: int = 64) -> str:
    """A folder name for the prompt's run: "A red cube, on a table!" -> "a_red_cube_on_a_table", "café rouge" ->
    "café_rouge" (letters of any script, digits, '_'; at most `limit` characters; "prompt" when nothing is left).
    Prompts can share a name: cli/commands/dreamfusion.py numbers the folders of the others."""
    name = re.sub(r"[\W_]+", "_", prompt.lower()).strip("_")[:limit].rstrip("_")
    return name or "prompt"


def fit_view_prompts(prompt: str, words: list[str], prior) -> tuple[str, dict[str, str], str | None]:
    """The prompt and its view variants as the prior's text encoder will read them, view words kept.

    A text encoder reads a fixed number of tokens (77 for CLIP) and cuts the rest; '<long prompt>, back view' would
    lose its view words and all views would look the same to the prior. When the longest variant does not fit, the
    prompt is cut (by tokens) so that every '<prompt>, <view word>' fits. Returns (prompt, {word: text}, note) with
    note a one-line warning when something was cut (None otherwise).
    """
    budget = prior.prompt_budget()
    ids = prior.prompt_token_ids(prompt)
    suffix = max((len(prior.prompt_token_ids(f"{prompt}, {w}")) - len(ids) for w in words), default=0)
    if len(ids) + suffix <= budget:
        return prompt, {w: f"{prompt}, {w}" for w in words}, None
    keep = budget - suffix
    if keep < 1:
        raise ValueError(f"the prior reads only {budget} prompt tokens: no room for the prompt and a view word")
    while keep > 0:
        base = prior.tokenizer.decode(ids[:keep], skip_special_tokens=True).strip()
        texts = {w: f"{base}, {w}" for w in words}
        if all(len(prior.prompt_token_ids(t)) <= budget for t in [base, *texts.values()]):
            break
        keep -= 1
    note = (
        f"warning: the prompt is {len(ids)} tokens but the prior reads {budget}; it is cut to its first {keep} tokens"
        + (" so the view words stay" if words else "")
    )
    return base, texts, note
