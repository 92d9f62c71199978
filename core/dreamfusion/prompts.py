"""The prompt of a DreamFusion run: `check_prompt` (not empty) and `fit_view_prompts`, its view-dependent variants.

"a red cube" seen from yaw 170 deg becomes "a red cube, back view" (core/worlds/captions.py holds the view words and
their thresholds, shared with the captions the small-world prior was trained on; optimize.DreamFusion.prompts_for
picks each training camera's variant).
"""

from __future__ import annotations

import re

__all__ = ["check_prompt", "fit_view_prompts", "named_view", "run_name"]


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


def named_view(prompt: str) -> str | None:
    """The view word the prompt already says ("a red cube, back view" -> "back view"; any case), or None."""
    from ..worlds.captions import VIEW_WORDS

    found = re.search(r"\b(" + "|".join(map(re.escape, VIEW_WORDS)) + r")\b", prompt, re.IGNORECASE)
    return found and found.group(1).lower()


def fit_view_prompts(prompt: str, words: list[str], prior) -> tuple[str, dict[str, str], str | None]:
    """The prompt and its view variants as the prior's text encoder will read them, view words kept.

    A text encoder reads a fixed number of tokens (77 for CLIP) and cuts the rest; '<long prompt>, back view' would
    lose its view words and all views would look the same to the prior. When the longest variant does not fit, the
    prompt is cut (by tokens) so that every '<prompt>, <view word>' fits. A prompt that already names a view ("a red
    cube, back view") gets no view word: every variant is the prompt as typed (not "a red cube, back view, front
    view", which contradicts itself). Returns (prompt, {word: text}, note) with note a one-line warning when the
    prompt was cut or names a view (None otherwise).
    """
    named = named_view(prompt) if words else None
    appended = [] if named else words  # the view words the variants add to the prompt
    budget = prior.prompt_budget()
    ids = prior.prompt_token_ids(prompt)
    suffix = max((len(prior.prompt_token_ids(f"{prompt}, {w}")) - len(ids) for w in appended), default=0)
    notes = (
        [f"the prompt names a view ({named!r}): no view word is added, every camera reads it as typed"] if named else []
    )
    base = prompt
    if len(ids) + suffix > budget:
        base, keep = _cut(ids, appended, budget, suffix, prior)
        if appended:  # (the prompt alone may fit: the view words are what overflows)
            notes.append(
                f"the prior reads {budget} prompt tokens: the prompt's {len(ids)} and up to {suffix} for ', <view "
                f"word>' do not fit, so it is cut to its first {keep} tokens and the view words stay"
            )
        else:
            notes.append(f"the prompt is {len(ids)} tokens but the prior reads {budget}; it is cut to its first {keep}")
    texts = {w: f"{base}, {w}" if appended else base for w in words}
    return base, texts, "warning: " + "; ".join(notes) if notes else None


def _cut(ids: list[int], words: list[str], budget: int, suffix: int, prior) -> tuple[str, int]:
    """(text, token count) of the longest start of the prompt `ids` that fits the budget with each ', <word>'."""
    for keep in range(budget - suffix, 0, -1):
        base = prior.tokenizer.decode(ids[:keep], skip_special_tokens=True).strip()
        if all(len(prior.prompt_token_ids(t)) <= budget for t in [base, *(f"{base}, {w}" for w in words)]):
            return base, keep
    raise ValueError(f"the prior reads only {budget} prompt tokens: no room for the prompt and a view word")
