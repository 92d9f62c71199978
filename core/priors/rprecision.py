"""CLIP R-Precision (DreamFusion, Sec. 4): for each rendering, is its own caption among the k prompts CLIP ranks
highest out of the whole prompt set? The score is the fraction of renderings for which it is."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["clip_r_precision", "r_precision_from_similarity", "read_prompt_set", "read_render_set", "write_render_set"]


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


def read_prompt_set(prompts_file) -> list[str]:
    """The prompt set: a text file, one prompt per line (blank lines skipped), at least 2 distinct prompts.

    A repeated prompt is kept once, where it first appears: two equal prompts would tie for every image of that
    prompt, and ties count against the image (r_precision_from_similarity), so a duplicate line would turn its
    images into misses.
    """
    from pathlib import Path

    prompts_file = Path(prompts_file)
    if not prompts_file.is_file():
        raise FileNotFoundError(f"prompts file not found: {prompts_file}")
    lines = (line.strip() for line in prompts_file.read_text().splitlines())
    prompts = list(dict.fromkeys(line for line in lines if line))
    if len(prompts) < 2:
        raise ValueError(f"{prompts_file}: need at least 2 distinct prompts to retrieve among, found {len(prompts)}")
    return prompts


def _caption_prompt(captions_path, name: str, entry, key: str) -> str:
    """The prompt of captions.json's entry `name`: the string itself, or a dict's `key` entry (a string)."""
    import json

    prompt = entry.get(key) if isinstance(entry, dict) else entry
    if isinstance(prompt, str):
        return prompt
    if isinstance(entry, dict):
        have = ", ".join(repr(k) for k in entry) or "none"
        problem = f"has no text {key!r} entry (--key; its entries: {have})"
    else:
        problem = f"is {json.dumps(entry)[:40]}; expected its prompt (a string) or an object with a {key!r} entry"
    raise ValueError(f"{captions_path}: the entry of {name!r} {problem}")


def read_render_set(renders_dir, prompts_file, key: str = "caption") -> tuple[Tensor, list[int], list[str], list[str]]:
    """A folder of renders with their prompts, for `tristudio eval rprecision`.

    renders_dir holds PNGs and `captions.json` mapping each image's relative path to its prompt: a string, or a dict
    whose `key` entry is the prompt (the format `tristudio dataset make` writes). prompts_file lists the prompt set,
    one per line; every render's prompt must be in it. Returns images (N, 3, H, W) in [0, 1], prompt index per
    image, the prompt set and the image names.
    """
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    renders_dir, prompts_file = Path(renders_dir), Path(prompts_file)
    if not renders_dir.is_dir():
        raise FileNotFoundError(f"renders folder not found: {renders_dir}")
    captions_path = renders_dir / "captions.json"
    if not captions_path.is_file():
        raise FileNotFoundError(f"{captions_path} is missing: it maps each render's relative path to its prompt")
    prompts = read_prompt_set(prompts_file)
    where = {p: i for i, p in enumerate(prompts)}
    try:
        captions = json.loads(captions_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{captions_path} is not valid JSON ({exc})") from None
    if not isinstance(captions, dict):
        raise ValueError(
            f"{captions_path} is a JSON {type(captions).__name__}; expected an object mapping each render's "
            "relative path to its prompt"
        )
    names, images, index = [], [], []
    for name, entry in sorted(captions.items()):
        prompt = _caption_prompt(captions_path, name, entry, key)
        if prompt not in where:
            raise ValueError(f"{name}: its prompt {prompt!r} is not in {prompts_file}")
        path = renders_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"render listed in captions.json not found: {path}")
        with Image.open(path) as im:
            images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).float() / 255)
        names.append(name)
        index.append(where[prompt])
    if not images:
        raise ValueError(f"{captions_path} lists no renders")
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) != 1:
        raise ValueError(f"renders have mixed sizes {sorted(sizes)}")
    return torch.stack(images), index, prompts, names


def write_render_set(folder, images: Tensor, prompts: Sequence[str], names: Sequence[str]) -> None:
    """What read_render_set reads: images (N, 3, H, W) in [0, 1] as folder/NAME PNGs, captions.json (NAME -> its
    prompt) and prompts.txt (the distinct prompts, in order of first appearance). Each file is written atomically."""
    import json
    from pathlib import Path

    from ..io.atomic import atomic_write_text
    from ..io.images import save_png, to_uint8

    if not len(images) == len(prompts) == len(names):
        raise ValueError(f"{len(images)} images, {len(prompts)} prompts and {len(names)} names")
    folder = Path(folder)
    for image, name in zip(to_uint8(images, (0.0, 1.0)), names, strict=True):  # (H, W, 3) uint8 each
        save_png(folder / name, image)
    atomic_write_text(folder / "captions.json", json.dumps(dict(zip(names, prompts, strict=True)), indent=1))
    atomic_write_text(folder / "prompts.txt", "".join(f"{p}\n" for p in dict.fromkeys(prompts)))
