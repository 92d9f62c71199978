"""Floater fraction: how much of a generated view's background is not empty.

For a rendered opacity map A (n, h, w) (the renderer's accumulated alpha, core/render/volume.py):

    head      = the connected component (4-neighbour) of {A > 0.5} holding the most central pixel of {A > 0.5}
    head_mask = head dilated by `margin` pixels (the "GT-like" silhouette: soft edges of the head are not floaters)
    floaters  = pixels outside head_mask with A > `threshold` (0.05)
    fraction  = |floaters| / |outside head_mask|        (pooled over all views)

Dashes in front of the face that are separate from it, streaks into the background and shards behind the head
count; density attached to the head within `margin` pixels does not. Ground-truth world renders score 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

__all__ = ["head_component", "floater_stats", "generator_floaters"]


def head_component(opacity: Float[Tensor, "n h w"], solid: float = 0.5) -> Bool[Tensor, "n h w"]:
    """The connected component of {opacity > solid} that holds its most central pixel (empty if none)."""
    n, h, w = opacity.shape
    fg = opacity > solid
    yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    dist = (yy**2 + xx**2).expand(n, h, w)
    score = torch.where(fg, -dist, torch.full_like(dist, -math.inf)).reshape(n, -1)
    seed = torch.zeros(n, h * w, dtype=torch.bool)
    has = fg.reshape(n, -1).any(1)
    seed[torch.arange(n)[has], score[has].argmax(1)] = True
    comp = seed.reshape(n, h, w)
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    for _ in range(h * w):
        grown = (F.conv2d(comp.float()[:, None], cross, padding=1)[:, 0] > 0) & fg
        if torch.equal(grown, comp):
            break
        comp = grown
    return comp


def floater_stats(
    opacity: Float[Tensor, "n h w"], threshold: float = 0.05, margin: int = 2, solid: float = 0.5
) -> dict[str, float]:
    """{"floater_fraction", "views_with_floaters", "background_pixels"} of a batch of opacity maps."""
    head = head_component(opacity, solid)
    k = 2 * margin + 1
    mask = F.max_pool2d(head.float()[:, None], k, stride=1, padding=margin)[:, 0] > 0
    background = ~mask
    floaters = background & (opacity > threshold)
    nb = int(background.sum())
    return {
        "floater_fraction": float(floaters.sum()) / max(nb, 1),
        "views_with_floaters": float(floaters.flatten(1).any(1).float().mean()),
        "background_pixels": nb,
    }


@torch.no_grad()
def generator_floaters(
    G,
    num: int,
    truncation_psi: float = 1.0,
    batch: int = 8,
    resolution: int | None = None,
    threshold: float = 0.05,
    time_budget_s: float | None = None,
    log=None,
) -> dict:
    """Floater fraction over `num` samples: seed i with the FFHQ-distributed camera of seed i
    (core/worlds/camera_sampling.py), rendered at the neural resolution (deterministic). Stops early when
    `time_budget_s` runs out ("num" = done)."""
    import time

    from ..eg3d.sampling import conditioning_label, raw_views, z_from_seeds
    from ..worlds.camera_sampling import head_cameras

    dev = next(G.parameters()).device
    t0 = time.time()
    maps = []
    done = 0
    while done < num:
        seeds = list(range(done, min(num, done + batch)))
        z = z_from_seeds(seeds, G.z_dim).to(dev)
        ws = G.mapping(z, conditioning_label(G, len(seeds)).to(dev), truncation_psi=truncation_psi)
        c = head_cameras(seeds).to(dev)
        r = raw_views(G, G.synthesis_planes(ws), c, resolution)
        maps.append(r["image_opacity"][:, 0].cpu())
        done += len(seeds)
        if log is not None:
            log(done, num)
        if time_budget_s is not None and time.time() - t0 > time_budget_s:
            break
    out = floater_stats(torch.cat(maps), threshold)
    out.update(num=done, threshold=threshold, seconds=round(time.time() - t0, 1))
    return out
