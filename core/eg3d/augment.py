"""A small differentiable ADA-style augmentation (Karras et al. 2020, "Training GANs with Limited Data").

Applied to *every* image the discriminator sees (real and generated), each transform independently with probability p
per sample, so that the generator cannot learn the augmentations (they do not "leak" for p < ~0.8). Our subset:

    integer translation   up to +-1/8 of the image side, reflect padding        (geometric, pose-preserving enough)
    brightness            x + N(0, 0.2)                                         (colour)
    contrast              mean + (x - mean) * lognormal(0, 0.5 ln 2)
    saturation            lum + (x - lum) * lognormal(0, ln 2)                  (per RGB triple)

No flips or rotations: with camera-conditioned D a mirrored image would contradict its pose label.
The pipe works on the dual discriminator's 6-channel input (image + raw image resized to the same size), treating
channels as RGB triples, so image and raw image get the same transform. `p` can be tuned by the ADA heuristic
(`AdaTuner`): r_t = E[sign(D(real))] pushed towards a target of 0.6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

__all__ = ["AugmentPipe", "AugmentStrengths", "AdaTuner"]


@dataclass(frozen=True)
class AugmentStrengths:
    """How strong each transform is when it fires (the module doc's table); 0 turns one off."""

    translate: float = 0.125  # largest integer shift, a fraction of the image side
    brightness: float = 0.2  # std of the added offset
    contrast: float = 0.5  # std of log2 of the contrast factor
    saturation: float = 1.0  # std of log2 of the saturation factor


class AugmentPipe(torch.nn.Module):
    """(N, C, H, W) -> (N, C, H, W), C a multiple of 3: each transform applied to each sample with probability `p`."""

    def __init__(self, p: float = 0.0, strengths: AugmentStrengths = AugmentStrengths()):
        super().__init__()
        self.p, self.strengths = float(p), strengths

    def forward(
        self, x: Float[Tensor, "n c h w"], generator: torch.Generator | None = None
    ) -> Float[Tensor, "n c h w"]:
        if self.p <= 0:
            return x
        n, c, h, w = x.shape
        if c % 3 != 0:
            raise ValueError(f"AugmentPipe: channels must be RGB triples, got {c}")
        dev, s = x.device, self.strengths

        def rand(*shape):
            return torch.rand(*shape, generator=generator).to(dev)

        def randn(*shape):
            return torch.randn(*shape, generator=generator).to(dev)

        def on(shape_tail=(1, 1, 1)):
            return (rand(n) < self.p).float().reshape(n, *shape_tail)

        # integer translation with reflect padding (a gather: differentiable w.r.t. x)
        if s.translate > 0:
            m = on((1,)).reshape(n)
            tx = torch.round((rand(n) * 2 - 1) * s.translate * w * m).long()
            ty = torch.round((rand(n) * 2 - 1) * s.translate * h * m).long()
            pad = int(math.ceil(s.translate * max(h, w))) + 1
            xp = F.pad(x, [pad, pad, pad, pad], mode="reflect")
            rows = torch.arange(h, device=dev)[None, :] - ty.to(dev)[:, None] + pad  # (n, h)
            cols = torch.arange(w, device=dev)[None, :] - tx.to(dev)[:, None] + pad  # (n, w)
            idx_r = rows[:, None, :, None].expand(n, c, h, xp.shape[-1])
            xp = xp.gather(2, idx_r)
            idx_c = cols[:, None, None, :].expand(n, c, h, w)
            x = xp.gather(3, idx_c)
        x = x.reshape(n, c // 3, 3, h, w)
        if s.brightness > 0:
            x = x + (randn(n) * s.brightness).reshape(n, 1, 1, 1, 1) * on((1, 1, 1, 1))
        if s.contrast > 0:
            f = torch.exp2(randn(n) * s.contrast).reshape(n, 1, 1, 1, 1)
            f = torch.where(on((1, 1, 1, 1)) > 0, f, torch.ones_like(f))
            mean = x.mean(dim=(2, 3, 4), keepdim=True)
            x = mean + (x - mean) * f
        if s.saturation > 0:
            f = torch.exp2(randn(n) * s.saturation).reshape(n, 1, 1, 1, 1)
            f = torch.where(on((1, 1, 1, 1)) > 0, f, torch.ones_like(f))
            lum = x.mean(dim=2, keepdim=True)
            x = lum + (x - lum) * f
        return x.reshape(n, c, h, w)


class AdaTuner:
    """ADA's feedback: every `interval` steps, p += sign(mean sign(D(real)) - target) * batch * interval / (speed)."""

    def __init__(self, target: float = 0.6, ada_kimg: float = 500.0, interval: int = 4):
        self.target, self.ada_kimg, self.interval = target, ada_kimg, interval
        self.signs: list[float] = []

    def accumulate(self, real_logits: Tensor) -> None:
        self.signs.append(float(real_logits.detach().sign().mean()))

    def update(self, pipe: AugmentPipe, batch: int, step: int) -> None:
        if (step + 1) % self.interval or not self.signs:
            return
        rt = sum(self.signs) / len(self.signs)
        self.signs.clear()
        adjust = math.copysign(1.0, rt - self.target) * batch * self.interval / (self.ada_kimg * 1000)
        pipe.p = float(min(max(pipe.p + adjust, 0.0), 1.0))
