"""Geometry regularisers added to the guidance loss, on the rendered rays of one step.

Shapes: opacity o (n, m, 1) = the rays' accumulated alpha in [0, 1] (n images, m = H*W rays), normals (n, m, 3) unit
(zero on rays the sampler skipped), ray directions d (n, m, 3) unit, from the camera into the scene.

    orientation  (Ref-NeRF / DreamFusion):  mean over rays of  stopgrad(o) * max(0, n . d)^2
                 a normal facing away from the camera (n . d > 0) on a visible surface is penalised; this is what
                 keeps the density from growing semi-transparent "slabs" whose normals point inwards
    sparsity     (threestudio's lambda_sparsity):  mean over rays of  sqrt(o^2 + 0.01)
                 a smooth L1 on opacity: empty rays cost 0.1, opaque ones ~1, so fog over the scene box is paid for
    entropy      (stable-dreamfusion):  mean over rays of  -(o log o + (1 - o) log(1 - o))   (o clamped to 1e-5)
                 pushes each ray to fully opaque or fully empty
    opacity      mean over rays of o (a plain L1)
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["orientation_loss", "sparsity_loss", "entropy_loss", "opacity_loss"]


def orientation_loss(
    opacity: Float[Tensor, "n m 1"], normals: Float[Tensor, "n m 3"], dirs: Float[Tensor, "n m 3"]
) -> Tensor:
    n_dot_d = (normals * dirs).sum(-1, keepdim=True)
    return (opacity.detach() * torch.relu(n_dot_d) ** 2).mean()


def sparsity_loss(opacity: Float[Tensor, "n m 1"], eps: float = 0.01) -> Tensor:
    return (opacity**2 + eps).sqrt().mean()


def entropy_loss(opacity: Float[Tensor, "n m 1"], clamp: float = 1e-5) -> Tensor:
    o = opacity.clamp(clamp, 1 - clamp)
    return (-(o * o.log() + (1 - o) * (1 - o).log())).mean()


def opacity_loss(opacity: Float[Tensor, "n m 1"]) -> Tensor:
    return opacity.mean()
