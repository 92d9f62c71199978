"""Features of real (dataset) and generated (model) images for FID / KID, with named extractors.

'inception': the FID Inception-v3 (2048-d), weights from a user-named file -> metrics "FID" / "KID"
'sw':        the small-world autoencoder encoder (256-d)                   -> metrics "FID-sw" / "KID-sw"
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..data import EG3DDataset

__all__ = ["load_extractor", "metric_name", "open_dataset", "dataset_features", "generator_features", "extract"]


def load_extractor(kind: str, weights: str | None, device="cpu") -> nn.Module:
    if kind == "inception":
        from .inception import load_inception

        return load_inception(weights, device)
    if kind == "sw":  # weights None: the shipped extractor (core/assets/sw_features)
        from .smallworld import load_small_world_extractor

        return load_small_world_extractor(weights, device)
    raise ValueError(f"unknown feature extractor {kind!r} (inception | sw)")


def metric_name(base: str, kind: str) -> str:
    return base if kind == "inception" else f"{base}-{kind}"


@torch.no_grad()
def extract(
    net: nn.Module, images01: Float[Tensor, "n 3 h w"], batch: int = 32, what: str = "images"
) -> Float[Tensor, "n d"]:
    """Features of `images01` (`what` names them in errors). NaN / Inf features (of NaN images, or from a broken
    extractor) raise a ValueError instead of becoming a NaN or a linear-algebra error in FID / KID."""
    dev = next(net.parameters()).device
    feats = torch.cat([net(images01[i : i + batch].to(dev)).double().cpu() for i in range(0, len(images01), batch)])
    bad = int((~torch.isfinite(feats)).any(dim=1).sum())
    if bad:
        raise ValueError(f"the features of {bad} of {len(feats)} {what} are NaN or Inf; no distance can be measured")
    return feats


def open_dataset(path: str | os.PathLike) -> EG3DDataset:
    """The EG3D dataset at `path`, checked as `train eg3d` checks its data (core/eg3d/train.py open_training_set:
    NaN / Inf labels, a rotation that is not orthonormal, an image that cannot be read... refused, naming the file),
    holding the 2 images a covariance needs at least. Problems raise DatasetError."""
    from ..data import DatasetError
    from ..eg3d.train import TrainingError, open_training_set

    try:
        ds = open_training_set(str(path)).ds
    except TrainingError as exc:
        raise DatasetError(str(exc)) from None
    if len(ds) < 2:
        raise DatasetError(f"dataset {path} holds {len(ds)} image; FID / KID need at least 2 images per side")
    return ds


@torch.no_grad()
def dataset_features(net: nn.Module, ds: EG3DDataset, num: int | None = None, batch: int = 32):
    """Features of the first `num` images of `ds` (all of them when it holds fewer, or with num None)."""
    n = len(ds) if num is None else min(num, len(ds))
    feats = []
    for i in range(0, n, batch):
        imgs = torch.stack([ds[j][0] for j in range(i, min(i + batch, n))]).float() / 255
        feats.append(extract(net, imgs, batch, what=f"images of {ds.path}"))
    return torch.cat(feats)


@torch.no_grad()
def generator_features(
    net: nn.Module, G, labels: Tensor, num: int, batch: int = 8, seed: int = 0, truncation_psi: float = 1.0
):
    """Features of `num` images of G: z from `seed`, poses drawn from `labels` (the dataset's, as EG3D does).

    Reproducible: the renderer's stratified jitter, its density noise and any synthesis noise draw from the global
    RNG, which is seeded with `seed` for the call (and given back as it was afterwards)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(G.parameters()).device
    feats = []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, num, batch):
            n = min(batch, num - i)
            z = torch.randn(n, G.z_dim, generator=g).to(dev)
            c = labels[torch.randint(len(labels), (n,), generator=g)].to(dev)
            img = G(z, c, truncation_psi=truncation_psi, noise_mode="const")["image"]
            feats.append(extract(net, ((img.clamp(-1, 1) + 1) / 2).cpu(), batch, what="generated images"))
    return torch.cat(feats)
