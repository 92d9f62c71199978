"""Acceptance measurements of the small-world prior, judged by the small-world CLIP.

evaluate_prior(prior, clip, ...) -> dict
  shape_color_top1       images sampled for "a <colour> <shape>" are retrieved by the CLIP with their own caption
                         ranked first among all 77 shape x colour captions (chance 1/77); split into the pairs the
                         prior trained on and the held-out pairs (export/training.json), plus shape / colour alone
  view_top1              images sampled for "<caption>, <view word>" (4 view words) are assigned their own view word
                         by the CLIP among the 4 "<caption>, <view>" captions (chance 1/4)
  view_top1_renders      the same CLIP view test on held-out renders (what the CLIP itself achieves on real views)
  head_top1              images sampled for "a head with <hair> hair and <skin> skin" retrieved with their own
                         caption first among the 25 head captions (chance 1/25); hair_top1 / skin_top1 alone
  head_view_top1         the view test on head prompts (a back view shows hair, a front view a face)

tristudio eval prior-acceptance [--prior PRIOR --clip CLIP --per-prompt N --steps S --guidance G --renders FOLDER]
(--guidance defaults to the prior's own CFG scale, Prior.sampling_guidance)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..worlds.captions import COLORS, VIEW_WORDS, head_caption, head_prompts, object_caption, shape_color_prompts
from .ddim import sample_images

__all__ = ["evaluate_prior", "holdout_pairs_of"]

VIEW_PAIRS = [
    ("red", "cube"),
    ("blue", "torus"),
    ("green", "cone"),
    ("yellow", "cylinder"),
    ("purple", "capsule"),
    ("orange", "sphere"),
    ("cyan", "rounded cube"),
    ("pink", "cube"),
]
HEAD_VIEW_PAIRS = [("black", "light"), ("blond", "tan"), ("brown", "pale"), ("red", "dark")]


def holdout_pairs_of(prior_folder) -> set[tuple[str, str]]:
    """(shape, colour) pairs the prior never trained on, from its export's training.json (empty if unknown)."""
    path = Path(prior_folder) / "training.json"
    if not path.is_file():
        return set()
    try:
        return {tuple(p) for p in json.loads(path.read_text()).get("holdout_pairs", [])}
    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise ValueError(
            f'{path}: not a training.json object with "holdout_pairs" [[shape, colour], ...] ({exc})'
        ) from None


@torch.no_grad()
def evaluate_prior(
    prior,
    clip,
    per_prompt: int = 1,
    steps: int = 50,
    guidance: float | None = None,
    seed: int = 0,
    view_pairs: list[tuple[str, str]] | None = None,
    holdout: set[tuple[str, str]] | None = None,
    save_grids: Path | None = None,
    pair_stride: int = 1,
    heads: bool = True,
    eta: float = 1.0,
) -> dict:
    """pair_stride k > 1 samples only the held-out pairs and every k-th other pair (still ranked among all 77).
    guidance None: the prior's own sampling CFG scale (Prior.sampling_guidance)."""
    guidance = prior.sampling_guidance if guidance is None else guidance
    pairs = [(s, c) for s, c, _ in shape_color_prompts()]
    captions = [caption for _, _, caption in shape_color_prompts()]
    holdout = holdout or set()
    sampled = [i for i, p in enumerate(pairs) if p in holdout or i % pair_stride == 0]
    prompts = [captions[i] for i in sampled for _ in range(per_prompt)]
    truth = [i for i in sampled for _ in range(per_prompt)]
    images = sample_images(prior, prompts, steps=steps, guidance=guidance, seed=seed, eta=eta)  # (N, 3, r, r) in [0, 1]
    best = (clip.embed_images(images) @ clip.embed_text(captions).T).argmax(dim=1).tolist()
    ok = [best[k] == truth[k] for k in range(len(truth))]
    seen = [k for k in range(len(truth)) if pairs[truth[k]] not in holdout]
    held = [k for k in range(len(truth)) if pairs[truth[k]] in holdout]
    frac = lambda idx: sum(ok[k] for k in idx) / len(idx) if idx else None  # noqa: E731
    report = {
        "n_images": len(prompts),
        "shape_color_top1": frac(range(len(truth))),
        "shape_color_top1_trained_pairs": frac(seen),
        "shape_color_top1_heldout_pairs": frac(held),
        "shape_top1": sum(pairs[best[k]][0] == pairs[truth[k]][0] for k in range(len(truth))) / len(truth),
        "color_top1": sum(pairs[best[k]][1] == pairs[truth[k]][1] for k in range(len(truth))) / len(truth),
        "chance_shape_color": 1 / len(pairs),
    }
    view_pairs = view_pairs or VIEW_PAIRS
    sample = dict(per_prompt=per_prompt, steps=steps, guidance=guidance, eta=eta)
    v_best, v_truth, v_images = _view_test(
        prior, clip, view_pairs, lambda c, s, v: object_caption(s, c, None, v), seed=seed + 1, **sample
    )
    report["view_top1"] = sum(b == t for b, t in zip(v_best, v_truth, strict=True)) / len(v_truth)
    report["chance_view"] = 1 / len(VIEW_WORDS)
    if heads:
        report.update(_heads_report(prior, clip, per_prompt, steps, guidance, seed, eta))
    report["settings"] = {
        "per_prompt": per_prompt,
        "ddim_steps": steps,
        "guidance": guidance,
        "eta": eta,
        "seed": seed,
        "pairs_sampled": len(sampled),
        "view_pairs": len(view_pairs),
    }
    if save_grids is not None:
        from .ddim import save_sample_grid

        save_grids = Path(save_grids)
        save_grids.mkdir(parents=True, exist_ok=True)
        cols = len(COLORS) * per_prompt if pair_stride == 1 else 8
        save_sample_grid(save_grids / "shape_color_grid.png", images, cols=cols, scale=2)
        save_sample_grid(save_grids / "view_grid.png", v_images, cols=len(VIEW_WORDS) * per_prompt, scale=2)
    return report


def _view_test(
    prior, clip, pairs, caption, per_prompt: int, steps: int, guidance: float, seed: int, eta: float
) -> tuple[list[int], list[int], torch.Tensor]:
    """Images sampled for caption(a, b, view) of each (a, b) in `pairs` and each view word (per_prompt each), and
    the view word the CLIP assigns each among the 4 caption(a, b, view) variants: (best view index per image, true
    view index per image, the images (N, 3, r, r) in [0, 1])."""
    prompts, truth, own = [], [], []
    for a, b in pairs:
        for j, view in enumerate(VIEW_WORDS):
            for _ in range(per_prompt):
                prompts.append(caption(a, b, view))
                truth.append(j)
                own.append((a, b))
    images = sample_images(prior, prompts, steps=steps, guidance=guidance, seed=seed, eta=eta)
    emb = clip.embed_images(images)
    best = [
        int((emb[k] @ clip.embed_text([caption(a, b, v) for v in VIEW_WORDS]).T).argmax())  # among (4, D)
        for k, (a, b) in enumerate(own)
    ]
    return best, truth, images


def _heads_report(prior, clip, per_prompt: int, steps: int, guidance: float, seed: int, eta: float) -> dict:
    pairs = [(h, k) for h, k, _ in head_prompts()]
    captions = [caption for _, _, caption in head_prompts()]
    truth = [i for i in range(len(pairs)) for _ in range(per_prompt)]
    images = sample_images(prior, [captions[i] for i in truth], steps=steps, guidance=guidance, seed=seed + 2, eta=eta)
    best = (clip.embed_images(images) @ clip.embed_text(captions).T).argmax(dim=1).tolist()
    n = len(truth)
    sample = dict(per_prompt=per_prompt, steps=steps, guidance=guidance, eta=eta)
    v_best, v_truth, _ = _view_test(prior, clip, HEAD_VIEW_PAIRS, head_caption, seed=seed + 3, **sample)
    backs = [k for k in range(len(v_truth)) if VIEW_WORDS[v_truth[k]] == "back view"]
    return {
        "n_head_images": n,
        "head_top1": sum(best[k] == truth[k] for k in range(n)) / n,
        "hair_top1": sum(pairs[best[k]][0] == pairs[truth[k]][0] for k in range(n)) / n,
        "skin_top1": sum(pairs[best[k]][1] == pairs[truth[k]][1] for k in range(n)) / n,
        "chance_head": 1 / len(pairs),
        "head_view_top1": sum(v_best[k] == v_truth[k] for k in range(len(v_truth))) / len(v_truth),
        "head_back_prompt_seen_as_front": sum(VIEW_WORDS[v_best[k]] == "front view" for k in backs) / len(backs),
    }
