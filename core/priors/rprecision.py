"""CLIP R-Precision (DreamFusion, Sec. 4): for each rendering, is its own caption among the k prompts CLIP ranks
highest out of the whole prompt set? The score is the fraction of renderings for which it is."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["clip_r_precision", "r_precision_from_similarity"]


def r_precision_from_similarity(similarity: Tensor, image_prompt_index: Tensor | Sequence[int], k: int = 1) -> float:
    """similarity (N_images, N_prompts); image_prompt_index (N_images,) the right prompt of each image -> [0, 1].

    Ties count against the image: the right prompt must score strictly above all but at most k-1 others.
    """
    n_images, n_prompts = similarity.shape
    index = torch.as_tensor(image_prompt_index, device=similarity.device).long().reshape(-1)  # (N_images,)
    if index.numel() != n_images:
        raise ValueError(f"{index.numel()} prompt indices for {n_images} images")
    if not 1 <= k <= n_prompts:
        raise ValueError(f"k={k} must be in [1, {n_prompts}] (the number of prompts)")
    if index.min() < 0 or index.max() >= n_prompts:
        raise ValueError(f"prompt indices must be in [0, {n_prompts}), got {index.min().item()}..{index.max().item()}")
    right = similarity.gather(1, index[:, None])  # (N_images, 1)
    others_at_least = (similarity >= right).sum(dim=1) - 1  # (N_images,) prompts other than the right one tying/beating
    return (others_at_least < k).float().mean().item()


@torch.no_grad()
def clip_r_precision(
    clip,
    images: Tensor,
    image_prompt_index: Tensor | Sequence[int],
    prompts: Sequence[str],
    k: int = 1,
    batch_size: int = 32,
) -> float:
    """R-Precision of renderings images (N, 3, H, W) in [0, 1] against the prompt set `prompts` (P).

    clip: a ClipModel (embed_images, embed_text give unit vectors). image_prompt_index (N,) ints in [0, P).
    """
    text = clip.embed_text(list(prompts))  # (P, D)
    image = torch.cat([clip.embed_images(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    return r_precision_from_similarity(image @ text.T, image_prompt_index, k=k)  # (N, P) cosine similarities
