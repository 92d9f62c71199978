"""EG3D's training objective, written from the papers (Goodfellow et al. 2014; Mescheder et al. 2018 for R1;
Karras et al. 2020 for lazy regularisation and the EMA generator; Chan et al. 2022 (EG3D) for dual discrimination,
generator pose conditioning, the raw-image blur fade-in and density regularisation).

Non-saturating logistic GAN loss (f = softplus):
    L_G   = E_z[ f(-D(G(z, c_cond), c)) ]
    L_D   = E_z[ f(D(G(z, c_cond), c)) ] + E_x[ f(-D(x, c_x)) ]
Lazy R1 on reals, every `r1_interval` D steps with gain = interval (both D inputs, final image and raw image):
    L_R1  = gamma / 2 * E_x[ |grad_image D(x)|^2 + |grad_raw D(x)|^2 ]
Density regularisation (EG3D's 'l1'), every `density_reg_interval` G steps with gain = interval:
    p ~ U[-1, 1]^3 (N x P points),  p' = p + N(0, density_reg_p_dist^2)
    L_den = density_reg * mean |sigma(p) - sigma(p')|           sigma = raw decoder density (before softplus)
Generator pose conditioning (GPC): G's mapping sees c_cond = another random pose with probability gpc_reg_prob, else
the rendering pose c (so that G learns to produce images independent of the conditioning pose).
Blur fade-in: every image D sees is blurred with a Gaussian of sigma = blur_init_sigma * max(1 - kimg/blur_fade_kimg, 0)
(EG3D blurs the final image; real raw images are blurred too before being resized); 0 turns it off.
EMA: beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, cur_nimg * ema_rampup) with rampup;
    G_ema <- beta * G_ema + (1 - beta) * G  (parameters; buffers copied).
Adam per network, betas (0, 0.99), eps 1e-8; a network with lazy regularisation every k steps uses
lr * k / (k + 1) and betas ** (k / (k + 1)) (the mini-batch ratio correction of StyleGAN2).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from .discriminator import filtered_resizing
from .stylegan2 import upfirdn2d

__all__ = [
    "LossConfig",
    "StepInputs",
    "draw_step_inputs",
    "blur_sigma_at",
    "neural_rendering_resolution_at",
    "blur",
    "run_G",
    "DiscriminatorView",
    "run_D",
    "StepContext",
    "generator_loss",
    "discriminator_loss",
    "r1_penalty",
    "r1_loss",
    "density_reg_loss",
    "ema_beta",
    "update_ema",
    "make_adam",
    "lazy_reg_ratio",
]


@dataclass
class LossConfig:
    """Loss weights and schedules (EG3D FFHQ defaults where it has them)."""

    r1_gamma: float = 1.0
    r1_interval: int = 16  # lazy R1: every k D steps (0: never)
    density_reg: float = 0.25
    density_reg_p_dist: float = 0.004
    density_reg_interval: int = 4  # every k G steps (0: never)
    density_reg_points: int = 1000  # points per sample
    gpc_reg_prob: float = 0.5  # probability to condition G on a different random pose
    blur_init_sigma: float = 10.0
    blur_fade_kimg: float = 200.0  # 0: no blur
    blur_raw_target: bool = True
    filter_mode: str = "antialiased"
    neural_rendering_resolution_initial: int | None = None  # None: the generator's own
    neural_rendering_resolution_final: int | None = None  # None: constant
    neural_rendering_resolution_fade_kimg: float = 1000.0
    neural_rendering_resolution_fade_start_kimg: float = 0.0  # two-stage: hold `initial` until here, then fade
    noise_mode: str = "random"  # synthesis noise during training ('const' for exact tests)
    deterministic_render: bool = False  # mid-interval / fixed-quantile ray samples (exact tests)

    @classmethod
    def from_dict(cls, d: dict) -> "LossConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"LossConfig: unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepInputs:
    """Everything random one training step consumes, drawn for the whole (global) batch up front."""

    real_img: Float[Tensor, "n 3 s s"]  # dataset images in [-1, 1]
    real_c: Float[Tensor, "n 25"]  # their camera labels
    gen_z: Float[Tensor, "n z"]
    gen_c: Float[Tensor, "n 25"]  # rendering poses (dataset labels at random)
    gen_c_cond: Float[Tensor, "n 25"]  # conditioning poses after the GPC swap
    density_points: Float[Tensor, "n p 3"]  # U[-1, 1]^3
    density_offsets: Float[Tensor, "n p 3"]  # N(0, 1) (scaled by density_reg_p_dist at use)

    def shard(self, rank: int, world: int) -> "StepInputs":
        """This rank's strided share (samples rank, rank + world, ...): keeps minibatch-stddev groups intact."""
        return StepInputs(**{f.name: getattr(self, f.name)[rank::world] for f in fields(self)})

    def to(self, device) -> "StepInputs":
        return StepInputs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __len__(self) -> int:
        return self.real_img.shape[0]


def draw_step_inputs(
    generator: torch.Generator,
    real_img: Tensor,
    real_c: Tensor,
    all_labels: Float[Tensor, "m 25"],
    z_dim: int,
    cfg: LossConfig,
) -> StepInputs:
    """Latents, rendering poses (random dataset labels), GPC swaps and density-reg points from `generator` (CPU)."""
    n = real_img.shape[0]
    gen_z = torch.randn(n, z_dim, generator=generator)
    gen_c = all_labels[torch.randint(len(all_labels), (n,), generator=generator)]
    other = all_labels[torch.randint(len(all_labels), (n,), generator=generator)]
    swap = torch.rand(n, 1, generator=generator) < cfg.gpc_reg_prob
    gen_c_cond = torch.where(swap, other, gen_c)
    p = cfg.density_reg_points
    points = torch.rand(n, p, 3, generator=generator) * 2 - 1
    offsets = torch.randn(n, p, 3, generator=generator)
    return StepInputs(real_img, real_c, gen_z, gen_c, gen_c_cond, points, offsets)


# ----------------------------------------------------------------------------------------------- schedules


def blur_sigma_at(cur_nimg: float, cfg: LossConfig) -> float:
    if cfg.blur_fade_kimg <= 0:
        return 0.0
    return max(1.0 - cur_nimg / (cfg.blur_fade_kimg * 1e3), 0.0) * cfg.blur_init_sigma


def neural_rendering_resolution_at(cur_nimg: float, cfg: LossConfig, default: int) -> int:
    initial = cfg.neural_rendering_resolution_initial or default
    final = cfg.neural_rendering_resolution_final
    if final is None:
        return int(initial)
    start = cfg.neural_rendering_resolution_fade_start_kimg * 1e3
    fade = cfg.neural_rendering_resolution_fade_kimg * 1e3
    alpha = 1.0 if fade <= 0 and cur_nimg >= start else min(max((cur_nimg - start) / max(fade, 1e-9), 0.0), 1.0)
    return int(np.rint(initial * (1 - alpha) + final * alpha))


def blur(x: Float[Tensor, "n c h w"], sigma: float) -> Float[Tensor, "n c h w"]:
    """Separable Gaussian-like blur f(k) = 2^-(k/sigma)^2, |k| <= floor(3 sigma), normalised; same size output."""
    size = int(math.floor(sigma * 3))
    if size <= 0:
        return x
    k = torch.arange(-size, size + 1, dtype=torch.float32, device=x.device)
    f = torch.exp2(-(k / sigma).square())
    f = f / f.sum()
    return upfirdn2d(x, f, padding=size)


# ----------------------------------------------------------------------------------------------- networks


def run_G(
    G: nn.Module,
    z: Tensor,
    c_cond: Tensor,
    c: Tensor,
    cfg: LossConfig,
    neural_rendering_resolution: int,
    update_emas: bool = False,
) -> tuple[dict[str, Tensor], Tensor]:
    """(z, c_cond) -> ws -> render from c. Returns ({image (n,3,S,S), image_raw (n,3,R,R), image_depth, ...}, ws)."""
    ws = G.mapping(z, c_cond, update_emas=update_emas)
    out = G.synthesis(
        ws,
        c,
        neural_rendering_resolution=neural_rendering_resolution,
        noise_mode=cfg.noise_mode,
        deterministic=cfg.deterministic_render,
        update_emas=update_emas,
    )
    return out, ws


@dataclass(frozen=True)
class DiscriminatorView:
    """How D sees an image pair this step: the final image blurred (blur fade-in), then the pair through the ADA pipe
    (the raw image resized up to the final image's size and back, so both get the same transform)."""

    blur_sigma: float = 0.0
    augment_pipe: nn.Module | None = None

    def __call__(self, img: dict[str, Tensor]) -> dict[str, Tensor]:
        image, image_raw = img["image"], img["image_raw"]
        if self.blur_sigma > 0:
            image = blur(image, self.blur_sigma)
        if self.augment_pipe is not None and getattr(self.augment_pipe, "p", 0) > 0:
            s, r = image.shape[-1], image_raw.shape[-1]
            pair = self.augment_pipe(torch.cat([image, filtered_resizing(image_raw, s)], dim=1))  # (n, 6, s, s)
            image = pair[:, : image.shape[1]]
            image_raw = filtered_resizing(pair[:, image.shape[1] :], r)
        return {"image": image, "image_raw": image_raw}


def run_D(
    D: nn.Module, img: dict[str, Tensor], c: Tensor, view: DiscriminatorView = DiscriminatorView(), update_emas=False
) -> Float[Tensor, "n 1"]:
    return D(view(img), c, update_emas=update_emas)


def real_images(real_img: Tensor, neural_rendering_resolution: int, blur_sigma: float, cfg: LossConfig) -> dict:
    """The real image and its 'raw' counterpart: resized to the neural rendering resolution (blurred if asked)."""
    raw = filtered_resizing(real_img, neural_rendering_resolution, cfg.filter_mode)
    if cfg.blur_raw_target and blur_sigma > 0:
        raw = blur(raw, blur_sigma)
    return {"image": real_img, "image_raw": raw}


# ----------------------------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class StepContext:
    """What every loss phase of one training step sees: its random inputs, the loss settings, and this step's
    neural rendering resolution and discriminator view (both on schedules of the images shown)."""

    inp: StepInputs
    cfg: LossConfig
    nrr: int
    view: DiscriminatorView = DiscriminatorView()

    def real_images(self) -> dict[str, Tensor]:
        return real_images(self.inp.real_img, self.nrr, self.view.blur_sigma, self.cfg)

    def generated_images(self, G: nn.Module, update_emas: bool = False) -> dict[str, Tensor]:
        inp = self.inp
        return run_G(G, inp.gen_z, inp.gen_c_cond, inp.gen_c, self.cfg, self.nrr, update_emas=update_emas)[0]


def generator_loss(G: nn.Module, D: nn.Module, step: StepContext) -> Tensor:
    """L_G = mean softplus(-D(G(z, c_cond) seen from c, c))."""
    logits = run_D(D, step.generated_images(G), step.inp.gen_c, step.view)
    return F.softplus(-logits).mean()


def discriminator_loss(G: nn.Module, D: nn.Module, step: StepContext) -> tuple[Tensor, Tensor]:
    """L_D = mean softplus(D(fake)) + mean softplus(-D(real)). Returns (loss, real logits)."""
    with torch.no_grad():
        gen = step.generated_images(G, update_emas=True)
    fake_logits = run_D(D, gen, step.inp.gen_c, step.view, update_emas=True)
    real_logits = run_D(D, step.real_images(), step.inp.real_c, step.view)
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean(), real_logits


def r1_penalty(
    D: nn.Module, real: dict[str, Tensor], c: Tensor, view: DiscriminatorView = DiscriminatorView()
) -> Float[Tensor, " n"]:
    """Per-sample |d sum D / d image|^2 + |d sum D / d image_raw|^2 (graph kept for the backward)."""
    image = real["image"].detach().requires_grad_(True)
    raw = real["image_raw"].detach().requires_grad_(True)
    logits = run_D(D, {"image": image, "image_raw": raw}, c, view)
    g_img, g_raw = torch.autograd.grad(logits.sum(), [image, raw], create_graph=True)
    return g_img.square().sum(dim=(1, 2, 3)) + g_raw.square().sum(dim=(1, 2, 3))


def r1_loss(D: nn.Module, step: StepContext) -> Tensor:
    """gamma / 2 * mean R1 penalty (multiply by the interval for lazy regularisation)."""
    return r1_penalty(D, step.real_images(), step.inp.real_c, step.view).mean() * (step.cfg.r1_gamma / 2)


def density_reg_loss(G: nn.Module, step: StepContext) -> Tensor:
    """density_reg * mean |sigma(p) - sigma(p + density_reg_p_dist * eps)| at the step's random points."""
    inp, cfg = step.inp, step.cfg
    ws = G.mapping(inp.gen_z, inp.gen_c_cond, update_emas=False)
    p = inp.density_points  # (n, P, 3)
    q = p + inp.density_offsets * cfg.density_reg_p_dist
    coords = torch.cat([p, q], dim=1)  # (n, 2P, 3)
    sigma = G.sample_mixed(coords, torch.zeros_like(coords), ws, noise_mode=cfg.noise_mode)["sigma"]  # (n, 2P, 1)
    k = p.shape[1]
    return F.l1_loss(sigma[:, :k], sigma[:, k:]) * cfg.density_reg


# ----------------------------------------------------------------------------------------------- EMA and Adam


def ema_beta(batch: int, cur_nimg: float, ema_kimg: float, ema_rampup: float | None) -> float:
    """0.5 ** (batch / ema_nimg), ema_nimg = ema_kimg * 1000 (capped by cur_nimg * rampup when rampup is set)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None and ema_rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """p_ema <- p + beta * (p_ema - p) for parameters; buffers copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


def lazy_reg_ratio(interval: int) -> float:
    return interval / (interval + 1) if interval and interval > 0 else 1.0


def make_adam(params, lr: float, betas=(0.0, 0.99), eps: float = 1e-8, reg_interval: int = 0) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction (lr * r, betas ** r, r = k / (k + 1))."""
    r = lazy_reg_ratio(reg_interval)
    return torch.optim.Adam(params, lr=lr * r, betas=(betas[0] ** r, betas[1] ** r), eps=eps)


def clone_module(m: nn.Module) -> nn.Module:
    return copy.deepcopy(m).eval().requires_grad_(False)
