"""Acceptance of a trained EG3D model in the small world (the shipped heads model, core/assets/eg3d_heads).

    tristudio eval eg3d-acceptance --model MODEL --train TRAIN_DATASET --held-out HELD_OUT_DATASET --out DIR

Measures, all with the shipped small-world feature extractor (FID-sw / KID-sw: not comparable with published FID):
  * the model's FID-sw / KID-sw against held-out renders (poses drawn from the held-out labels, psi = 1);
  * the same for a randomly initialised generator of the same configuration;
  * the same for a *no-3D baseline*: a linear-Gaussian image model (probabilistic PCA, `PCAGaussian`) fitted to the
    training images: it knows the images' mean and leading modes of variation but nothing of geometry or pose;
  * the floor: training renders against held-out renders (two samples of the same world);
  * multi-view consistency of the model's geometry: depth / normal reprojection error between adjacent yaws;
  * a sample grid at yaws -60 .. +60 deg (rows = seeds) to look at;
  * with --world heads|heads2 (issue 18's acceptance), also ID-sw, pose error and floater fraction
    (core/metrics/identity.py, pose.py, floaters.py) of the model and the world's own ceiling / floor.
Writes DIR/acceptance.json and DIR/yaw_grid.png.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..io.atomic import atomic_write_text, without_nan
from ..io.images import save_png

__all__ = ["PCAGaussian", "yaw_grid", "evaluate_model"]


class PCAGaussian:
    """A Gaussian over images restricted to the top-k principal components of the training images:

        x = mean + sum_{i<k} sqrt(lambda_i) e_i u_i,   u ~ N(0, I),   lambda_i = s_i^2 / (N - 1)

    (probabilistic PCA without the isotropic residual). Images are (N, 3, H, W) in [0, 1]; samples are clamped."""

    def __init__(self, images: Float[Tensor, "n 3 h w"], k: int = 64):
        n = images.shape[0]
        if n < 2:
            raise ValueError("PCAGaussian needs at least two images")
        self.shape = tuple(images.shape[1:])
        x = images.reshape(n, -1).double()
        self.mean = x.mean(dim=0)
        _, s, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        k = min(k, vh.shape[0])
        self.components = vh[:k]  # (k, D) orthonormal rows
        self.std = s[:k] / math.sqrt(n - 1)  # (k,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 3 h w"]:
        u = torch.randn(n, len(self.std), generator=generator, dtype=torch.float64)
        x = self.mean + (u * self.std) @ self.components
        return x.reshape(n, *self.shape).clamp(0, 1).float()


@torch.no_grad()
def yaw_grid(G, seeds: list[int], yaws_deg: list[float], truncation_psi: float = 0.7) -> np.ndarray:
    """uint8 (rows * S, cols * S, 3): seed rows, yaw columns (frontal conditioning, deterministic rendering)."""
    from .sampling import conditioning_label, view_label, z_from_seeds

    dev = next(G.parameters()).device
    z = z_from_seeds(seeds, G.z_dim).to(dev)
    ws = G.mapping(z, conditioning_label(G, len(seeds)).to(dev), truncation_psi=truncation_psi)
    rows = []
    for i in range(len(seeds)):
        c = view_label(G, torch.tensor([math.radians(y) for y in yaws_deg]), 0.0).to(dev)
        img = G.synthesis(ws[i : i + 1].expand(len(yaws_deg), -1, -1), c, noise_mode="const", deterministic=True)[
            "image"
        ]
        rows.append(torch.cat(list(img), dim=2))
    grid = torch.cat(rows, dim=1)
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _images(path: str | Path, num: int) -> tuple[Tensor, Tensor]:
    from ..data import EG3DDataset

    ds = EG3DDataset(path)
    n = min(num, len(ds))
    imgs = torch.stack([ds[i][0] for i in range(n)]).float() / 255
    return imgs, torch.as_tensor(np.asarray(ds.labels), dtype=torch.float32)


def evaluate_model(
    model: str | Path,
    train: str | Path,
    held_out: str | Path,
    out: str | Path,
    num: int = 1000,
    pca_k: int = 64,
    seeds: int = 6,
    log=print,
    world: str | None = None,
) -> dict:
    """The acceptance report of the generator `model` (a .pkl or our checkpoint folder) against the EG3D datasets
    `train` and `held_out` (folder or zip), `num` images each; written, with yaw_grid.png (`seeds` rows), to
    OUT/acceptance.json and returned. `world` (heads | heads2) adds ID-sw, pose error and floaters."""
    from ..metrics.consistency import generator_consistency
    from ..metrics.features import extract, generator_features
    from ..metrics.fid import fid_from_features
    from ..metrics.kid import kernel_inception_distance
    from ..metrics.smallworld import load_small_world_extractor
    from .generator import TriPlaneGenerator
    from .load import load_generator

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    net = load_small_world_extractor(None)
    G = load_generator(model)
    held_imgs, held_labels = _images(held_out, num)
    train_imgs, _ = _images(train, max(num, 4 * pca_k))
    real = extract(net, held_imgs)

    def scores(fake: Tensor) -> dict:
        kid, kid_std = kernel_inception_distance(real, fake, max_subset_size=max(2, len(real) // 2))  # std over halves
        return {"FID-sw": fid_from_features(real, fake), "KID-sw": kid, "KID-sw_std": kid_std}

    report: dict = {"model": str(model), "train": str(train), "held_out": str(held_out), "num": len(held_imgs)}
    report["model_scores"] = scores(generator_features(net, G, held_labels, len(held_imgs)))
    log(f"model: {report['model_scores']}")
    torch.manual_seed(0)
    G_random = TriPlaneGenerator(**G.init_kwargs).eval()
    G_random.neural_rendering_resolution = G.neural_rendering_resolution
    report["random_init_scores"] = scores(generator_features(net, G_random, held_labels, len(held_imgs)))
    log(f"random init: {report['random_init_scores']}")
    pca = PCAGaussian(train_imgs, pca_k)
    report["pca_gaussian_scores"] = scores(extract(net, pca.sample(len(held_imgs), torch.Generator().manual_seed(0))))
    report["pca_k"] = pca_k
    log(f"PCA-Gaussian (k={pca_k}): {report['pca_gaussian_scores']}")
    report["train_vs_held_out_scores"] = scores(extract(net, train_imgs[: len(held_imgs)]))
    log(f"train renders vs held-out renders: {report['train_vs_held_out_scores']}")
    report["consistency"] = generator_consistency(G, list(range(8)))
    log(f"consistency (adjacent yaws -0.4 .. 0.4 rad): {report['consistency']}")
    yaws = [-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0]
    save_png(out_dir / "yaw_grid.png", yaw_grid(G, list(range(seeds)), yaws))
    report["yaw_grid"] = {"file": "yaw_grid.png", "yaws_deg": yaws, "seeds": list(range(seeds)), "psi": 0.7}
    if world is not None:
        from ..metrics.floaters import generator_floaters
        from ..metrics.identity import generator_id_sw, load_identity_net, world_id_sw
        from ..metrics.pose import generator_pose_error, world_pose_floor

        id_net, _ = load_identity_net(None, world)
        report["id_sw"] = {
            "model": generator_id_sw(G, id_net, list(range(16))),
            "ground_truth": world_id_sw(id_net, world, list(range(800_000, 800_016))),
        }
        log(f"ID-sw: {report['id_sw']['model']['ID']:.3f} (world renders {report['id_sw']['ground_truth']['ID']:.3f})")
        report["pose"] = {
            "model": generator_pose_error(G, list(range(4)), world=world),
            "floor": world_pose_floor(world),
        }
        log(f"pose error: {report['pose']['model']['pose_error_deg']:.2f} deg")
        report["floaters"] = generator_floaters(G, num)
        log(f"floater fraction: {report['floaters']['floater_fraction']:.5f}")
    report["seconds"] = round(time.time() - t0, 1)
    atomic_write_text(out_dir / "acceptance.json", json.dumps(without_nan(report)[0], indent=2, allow_nan=False) + "\n")
    return report
