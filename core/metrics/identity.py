"""ID-sw: identity consistency across views with a small-world identity embedding (EG3D's ArcFace protocol, our net).

EG3D reports "ID" as the mean ArcFace cosine similarity between two views of the same generated identity. No ArcFace
weights can be had here (core/metrics/arcface.py loads a user's own), so this module trains a small embedding on a
heads world whose identities are known (the world's seed *is* the identity): renders of the same head from different
random FFHQ-like views must embed close, different heads far (InfoNCE over a batch of identities x 2 views, with a
learned temperature). The number it gives is reported as "ID-sw", never as ArcFace ID.

    net: 64 px RGB in [0, 1] -> 4 stride-2 convs (24, 48, 96, 96 ch, lrelu) -> global mean pool -> linear 64 -> L2

Protocol (both for world renders and generators): each identity is seen from a frontal view (yaw 0, pitch 0) and
from the views `ID_YAWS_DEG` (pitch 0); ID-sw = mean cosine similarity of the frontal embedding with each other
view's. Reference points reported beside it: the same number on ground-truth renders (the world's ceiling) and the
mean cosine between *different* identities' frontal views (the chance level).

Saved as a checkpoint folder (model.safetensors + model.json {"format": "tristudio-id-sw"}).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ..io.assets import ASSETS
from ..io.checkpoint import save_checkpoint
from .convnets import RES, conv_features, load_frozen, strided_convs

__all__ = [
    "FORMAT",
    "ID_YAWS_DEG",
    "IdentityNet",
    "render_views",
    "train_identity_net",
    "load_identity_net",
    "shipped_identity_path",
    "id_similarity",
    "world_id_sw",
    "generator_id_sw",
]

FORMAT = "tristudio-id-sw"
ID_YAWS_DEG = (-60.0, -40.0, -20.0, 20.0, 40.0, 60.0)
_VIEW_STREAM = 0x1DE7


class IdentityNet(nn.Module):
    dim = 64

    def __init__(self):
        super().__init__()
        self.convs = strided_convs([3, 24, 48, 96, 96])
        self.fc = nn.Linear(96, self.dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))  # InfoNCE inverse temperature (training only)

    def forward(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 64"]:
        x = conv_features(self.convs, images)
        return F.normalize(self.fc(x.mean(dim=(2, 3))), dim=-1)


@torch.no_grad()
def render_views(
    world: str, seeds: list[int], yaws: Tensor, pitches: Tensor, res: int = RES, supersample: int = 1
) -> Float[Tensor, "n v 3 res res"]:
    """World renders of each seed's head from the given views (orbit around the origin looking at the FFHQ pivot,
    as core/eg3d/sampling.view_label): (n, v, 3, res, res) in [0, 1]. yaws, pitches: (v,) or (n, v) radians."""
    from ..cameras import FFHQ_FOV_DEG, FFHQ_PIVOT, FFHQ_RADIUS, Cameras
    from ..worlds import render
    from ..worlds.head_worlds import head_sampler

    heads = head_sampler(world, "ID-sw")(seeds)
    n = len(seeds)
    yaws, pitches = yaws.expand(n, -1), pitches.expand(n, -1)
    v = yaws.shape[1]
    cams = Cameras.orbit(
        yaws.reshape(-1), pitches.reshape(-1), FFHQ_RADIUS, FFHQ_FOV_DEG, pivot=FFHQ_PIVOT, center=(0.0, 0.0, 0.0)
    )
    out = render(heads.scene[[b for b in range(n) for _ in range(v)]], cams, res, supersample=supersample)
    return out.rgb.permute(0, 3, 1, 2).reshape(n, v, 3, res, res)


def _random_views(seeds: list[int], v: int) -> tuple[Tensor, Tensor]:
    """FFHQ-like random (yaw, pitch) per seed and view, widened to |yaw| <= 70 deg so side views are learnt too."""
    g = torch.Generator().manual_seed(_VIEW_STREAM + seeds[0])
    yaw = (torch.rand(len(seeds), v, generator=g) * 2 - 1) * math.radians(70)
    pitch = torch.randn(len(seeds), v, generator=g) * 0.1
    return yaw, pitch


def train_identity_net(
    world: str,
    out: str | os.PathLike,
    identities: int = 160,
    views: int = 4,
    steps: int = 600,
    batch: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    start: int = 700_000,
    log=None,
) -> Path:
    """Render `identities` heads x `views` random views, fit the InfoNCE embedding, save the folder `out`."""
    seeds = list(range(start, start + identities))
    yaw, pitch = _random_views(seeds, views)
    imgs = torch.cat(
        [render_views(world, seeds[i : i + 16], yaw[i : i + 16], pitch[i : i + 16]) for i in range(0, identities, 16)]
    )
    torch.manual_seed(seed)
    net = IdentityNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    for step in range(steps):
        ids = torch.randperm(identities, generator=g)[: min(batch, identities)]
        pick = torch.stack([torch.randperm(views, generator=g)[:2] for _ in ids])  # two distinct views per identity
        a = net(imgs[ids, pick[:, 0]])
        b = net(imgs[ids, pick[:, 1]])
        # small photometric jitter is unnecessary: the world renders are exact; views carry the variation
        logits = net.log_scale.exp() * a @ b.T
        target = torch.arange(len(ids))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log(f"ID-sw net step {step}: InfoNCE {loss.item():.4f}")
    meta = {
        "format": FORMAT,
        "version": 1,
        "world": world,
        "resolution": RES,
        "identities": identities,
        "views": views,
        "steps": steps,
        "seeds": [start, start + identities - 1],
        "final_loss": float(loss.detach()),
    }
    return save_checkpoint(out, dict(net.state_dict()), meta)


def shipped_identity_path(world: str = "heads") -> Path:
    return ASSETS / f"id_sw_{world}"


def load_identity_net(path: str | os.PathLike | None = None, world: str = "heads") -> tuple[IdentityNet, dict]:
    """Load an ID-sw net folder (None: the shipped one for `world`). Returns (net, its model.json)."""
    hint = f"train one with `tristudio eval id-sw-train --world {world} --out DIR` and pass --id-net DIR"
    return load_frozen(IdentityNet, path, FORMAT, shipped_identity_path(world), f"ID-sw net for world {world!r}", hint)


@torch.no_grad()
def id_similarity(embed, views: Float[Tensor, "n v 3 h w"], frontal_index: int = 0) -> dict[str, float]:
    """EG3D's protocol on (n identities, v views) images: mean cosine of the frontal view with each other view
    ("ID"), and the mean cosine between different identities' frontal views ("ID_chance")."""
    n, v = views.shape[:2]
    emb = embed(views.reshape(n * v, *views.shape[2:])).reshape(n, v, -1)
    front = emb[:, frontal_index]
    others = torch.cat([emb[:, :frontal_index], emb[:, frontal_index + 1 :]], 1)
    same = (others * front[:, None]).sum(-1)  # (n, v-1)
    cross = front @ front.T
    off = ~torch.eye(n, dtype=torch.bool)
    return {
        "ID": float(same.mean()),
        "ID_by_view": [round(float(x), 4) for x in same.mean(0)],
        "ID_chance": float(cross[off].mean()) if n > 1 else math.nan,
    }


def _views() -> tuple[Tensor, Tensor]:
    yaws = torch.tensor([0.0] + [math.radians(y) for y in ID_YAWS_DEG])
    return yaws, torch.zeros_like(yaws)


def world_id_sw(embed, world: str, seeds: list[int], res: int = RES) -> dict:
    """ID-sw of ground-truth world renders (the ceiling a perfect generator of that world reaches)."""
    yaws, pitches = _views()
    return {**id_similarity(embed, render_views(world, seeds, yaws, pitches, res, supersample=2)), "num": len(seeds)}


@torch.no_grad()
def generator_id_sw(G, embed, seeds: list[int], truncation_psi: float = 0.7) -> dict:
    """ID-sw of a generator: seed k's identity (frontal conditioning) rendered frontal and at ID_YAWS_DEG."""
    from ..eg3d.sampling import conditioning_label, view_label, z_from_seeds

    dev = next(G.parameters()).device
    yaws, pitches = _views()
    c = view_label(G, yaws, pitches).to(dev)
    imgs = []
    for s in seeds:
        ws = G.mapping(
            z_from_seeds([s], G.z_dim).to(dev), conditioning_label(G, 1).to(dev), truncation_psi=truncation_psi
        )
        out = G.synthesis(ws.expand(len(yaws), -1, -1), c, noise_mode="const", deterministic=True)["image"]
        imgs.append(((out.clamp(-1, 1) + 1) / 2).cpu())
    return {**id_similarity(embed, torch.stack(imgs)), "num": len(seeds), "psi": truncation_psi}
