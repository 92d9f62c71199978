"""Score distillation through a frozen diffusion prior: SDS, CSD and VSD behind one interface.

Rendered images x = g(theta) (N, 3, H, W) in [0, 1] are taken to the prior's model space z = E(x) (VAE encoder for
latent priors, 2x - 1 for pixel priors), noised at t ~ U[t_min, t_max] * T,

    z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps,        eps ~ N(0, I),

and each method gives a gradient G on z with no UNet Jacobian (the UNet outputs are constants):

    SDS (DreamFusion):  G = w(t) (eps_hat(z_t; y, t) - eps),  eps_hat = eps_u + s (eps_c - eps_u)   (CFG scale s)
    CSD (Yu et al.):    G = w(t) [ s_c (eps_c - eps_u) - s_n (eps_neg - eps_u) ]     (s_n = 0 without a negative)
    VSD (ProlificDreamer): G = w(t) (eps_hat(z_t; y, t) - eps_lora(z_t; y, t, camera)); the LoRA
                        eps_lora is trained on the (detached) renders with the diffusion loss |eps_lora - eps|^2.

with w(t) = 1 - abar_t. The surrogate loss L = sum(G * z) / N has dL/dz = G / N, so backpropagation carries G
through E and the renderer to theta: dL/dtheta = (1/N) sum G^T dz/dtheta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..io.checkpoint import optimizer_state_from_tensors, optimizer_state_to_tensors
from .methods import METHODS

__all__ = [
    "GuidanceOutput",
    "ScoreDistillation",
    "SDS",
    "CSD",
    "VSD",
    "GUIDANCES",
    "GUIDANCE_DEFAULTS",
    "guidance_class",
    "make_guidance",
    "default_guidance_scale",
]


@dataclass
class GuidanceOutput:
    loss: Tensor  # scalar surrogate whose gradient w.r.t. the model-space images is G / N
    grad: Tensor  # G, (N, C, h, w) in model space
    t: Tensor  # (N,) integer timesteps used
    noise: Tensor  # eps, (N, C, h, w)
    latents: Tensor  # z = E(x), (N, C, h, w) (with graph)
    metrics: dict = field(default_factory=dict)  # scalars for logs and plots


class ScoreDistillation(nn.Module):
    """Common machinery: model space, timestep and noise sampling, the surrogate loss, and the hooks the optimiser
    calls (after_step, extra_state / load_extra_state) so it never asks which method it holds.

    Subclasses set `name`, `label` (for menus) and `default_scale` (the paper's guidance scale) from methods.METHODS
    (a prior may override the scale through its profile, profiles.py) and implement `gradient`."""

    name = "base"
    label = ""
    default_scale = 1.0

    def __init__(self, prior, guidance_scale: float | None = None, t_range: tuple[float, float] = (0.02, 0.98)):
        """guidance_scale None: the method's default_scale (make_guidance applies the prior's profile first)."""
        super().__init__()
        self.prior = prior
        self.guidance_scale = float(self.default_scale if guidance_scale is None else guidance_scale)
        self.t_range = t_range

    def sample_t(self, n: int, gen: torch.Generator) -> Tensor:
        T = self.prior.num_train_timesteps
        lo, hi = int(self.t_range[0] * T), int(self.t_range[1] * T)
        return torch.randint(lo, hi + 1, (n,), generator=gen).to(self.prior.device)

    def weight(self, t: Tensor) -> Tensor:
        return (1 - self.prior.alphas_cumprod[t]).view(-1, 1, 1, 1)  # w(t) = 1 - abar_t

    def noisy(self, z: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        a = self.prior.alphas_cumprod[t].view(-1, 1, 1, 1).to(z.dtype)
        return a.sqrt() * z + (1 - a).sqrt() * noise

    def gradient(self, z_t: Tensor, t: Tensor, noise: Tensor, emb, cameras) -> tuple[Tensor, dict]:
        raise NotImplementedError

    def forward(
        self,
        images: Float[Tensor, "n 3 h w"],
        emb,
        gen: torch.Generator,
        cameras: Tensor | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> GuidanceOutput:
        """images in [0, 1]; emb: PromptEmbeddings (cond / uncond (N, L, D), optional `negative`); cameras: (N, 16)
        flattened cam2world (VSD's LoRA condition). t / noise may be given (tests); else drawn from `gen`."""
        z = self.prior.encode_images(images, generator=gen)  # (n, c, h, w), differentiable
        n = z.shape[0]
        if t is None:
            t = self.sample_t(n, gen)
        if noise is None:
            noise = torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device)
        with torch.no_grad():
            z_t = self.noisy(z.detach(), t, noise)
            g, metrics = self.gradient(z_t, t, noise, emb, cameras)
            g = torch.nan_to_num(self.weight(t).to(g.dtype) * g)
        loss = (g * z).sum() / n
        metrics = {"grad_norm": float(g.flatten(1).norm(dim=1).mean()), **metrics}
        return GuidanceOutput(loss=loss, grad=g, t=t, noise=noise, latents=z, metrics=metrics)

    # ---- hooks the optimiser calls ------------------------------------------------------------------------------
    def after_step(self, out: GuidanceOutput, emb, cameras: Tensor | None, gen: torch.Generator) -> dict:
        """Called once per optimisation step after the scene's update; returns extra scalar metrics."""
        return {}

    def extra_state(self) -> tuple[dict[str, Tensor], dict]:
        """(tensors, JSON metadata) of the method's own trainable state, stored in the scene's checkpoint."""
        return {}, {}

    def load_extra_state(self, tensors: dict[str, Tensor], meta: dict) -> None:
        """Restore what extra_state wrote (tensors / meta: the whole checkpoint's)."""


class SDS(ScoreDistillation):
    name, label, default_scale = "sds", METHODS["sds"].label, METHODS["sds"].default_scale

    def gradient(self, z_t, t, noise, emb, cameras):
        eps_hat = self.prior.predict_noise(z_t, t, emb.cond, emb.uncond, guidance_scale=self.guidance_scale)
        return eps_hat - noise, {}


class CSD(ScoreDistillation):
    """Classifier score distillation: the classifier part of CFG alone, eps_c - eps_u (no -eps term). With a
    negative prompt embedding (emb.negative) and `negative_scale` > 0, the negative classifier score is subtracted."""

    name, label, default_scale = "csd", METHODS["csd"].label, METHODS["csd"].default_scale

    def __init__(self, prior, guidance_scale: float | None = None, negative_scale: float = 0.0, t_range=(0.02, 0.98)):
        super().__init__(prior, guidance_scale, t_range)
        self.negative_scale = float(negative_scale)

    def gradient(self, z_t, t, noise, emb, cameras):
        parts = self.prior.predict_noise(z_t, t, emb.cond, emb.uncond, guidance_scale=1.0, return_parts=True)
        g = self.guidance_scale * (parts.eps_cond - parts.eps_uncond)
        if self.negative_scale > 0 and emb.negative is not None:
            eps_neg = self.prior.predict_noise(z_t, t, emb.negative)
            g = g - self.negative_scale * (eps_neg - parts.eps_uncond)
        return g, {}


class CameraEmbedding(nn.Module):
    """Flattened cam2world (16) -> the UNet's time-embedding width; added to the timestep embedding of the LoRA
    pass (diffusers' `class_embedding` hook), so eps_lora depends on the camera (ProlificDreamer)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        nn.init.zeros_(self.net[-1].weight)  # starts as "no camera information": the LoRA begins at the prior
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, cameras: Tensor) -> Tensor:
        return self.net(cameras)


class VSD(ScoreDistillation):
    """Variational score distillation with a LoRA (peft) on the prior's UNet, conditioned on the camera."""

    name, label, default_scale = "vsd", METHODS["vsd"].label, METHODS["vsd"].default_scale

    def __init__(
        self,
        prior,
        guidance_scale: float | None = None,
        t_range=(0.02, 0.98),
        lora_rank: int = 4,
        lora_lr: float = 1e-3,
    ):
        super().__init__(prior, guidance_scale, t_range)
        from peft import LoraConfig

        unet = prior.unet
        self.adapter_name = "vsd_lora"
        config = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
        if self.adapter_name in getattr(unet, "peft_config", {}):  # a previous run on this prior: start afresh
            unet.delete_adapters(self.adapter_name)
        unet.add_adapter(config, adapter_name=self.adapter_name)
        time_dim = unet.time_embedding.linear_2.out_features
        self.camera_embedding = CameraEmbedding(time_dim).to(prior.device)
        lora_params = [p for n, p in unet.named_parameters() if "lora" in n]
        for p in lora_params:
            p.requires_grad_(True)
        self.lora_params = lora_params + list(self.camera_embedding.parameters())
        self.optimizer = torch.optim.AdamW(self.lora_params, lr=lora_lr, weight_decay=0.0)
        unet.disable_adapters()

    def eps_lora(self, z_t: Tensor, t: Tensor, cond: Tensor, cameras: Tensor) -> Tensor:
        unet = self.prior.unet
        unet.enable_adapters()
        unet.class_embedding = self.camera_embedding
        try:
            out = unet(z_t, t, encoder_hidden_states=cond, class_labels=cameras).sample
        finally:
            unet.class_embedding = None
            unet.disable_adapters()
        out = out[:, : self.prior.latent_channels]  # IF-style learned variance channels dropped
        if self.prior.prediction_type == "epsilon":
            return out
        a = self.prior.alphas_cumprod[t].to(z_t.dtype).view(-1, 1, 1, 1)  # as Prior._unet_eps: to eps
        if self.prior.prediction_type == "v_prediction":
            return a.sqrt() * out + (1 - a).sqrt() * z_t
        return (z_t - a.sqrt() * out) / (1 - a).sqrt()

    def gradient(self, z_t, t, noise, emb, cameras):
        if cameras is None:
            raise ValueError("VSD needs the cameras (N, 16) of the rendered images")
        eps_hat = self.prior.predict_noise(z_t, t, emb.cond, emb.uncond, guidance_scale=self.guidance_scale)
        eps_l = self.eps_lora(z_t, t, emb.cond, cameras)
        return eps_hat - eps_l, {}

    def lora_step(self, z: Tensor, emb, cameras: Tensor, gen: torch.Generator) -> float:
        """One diffusion-loss step of the LoRA on the detached renders z (model space)."""
        z = z.detach()
        t = self.sample_t(z.shape[0], gen)
        noise = torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device)
        with torch.enable_grad():
            pred = self.eps_lora(self.noisy(z, t, noise), t, emb.cond, cameras)
            loss = torch.nn.functional.mse_loss(pred, noise)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def after_step(self, out, emb, cameras, gen):
        """The LoRA learns the step's (detached) renders."""
        return {"lora_loss": self.lora_step(out.latents, emb, cameras, gen)}

    def extra_state(self):
        tensors = {f"vsd.{k}": v for k, v in self.trainable_state().items()}
        opt_tensors, opt_meta = optimizer_state_to_tensors(self.optimizer, "vsd_optimizer")
        tensors.update(opt_tensors)
        return tensors, {"vsd_optimizer": opt_meta}

    def load_extra_state(self, tensors, meta):
        self.load_trainable_state({k[4:]: v for k, v in tensors.items() if k.startswith("vsd.")})
        optimizer_state_from_tensors(self.optimizer, tensors, meta["vsd_optimizer"], "vsd_optimizer")

    def trainable_state(self) -> dict[str, Tensor]:
        state = {f"lora.{n}": p.detach() for n, p in self.prior.unet.named_parameters() if "lora" in n}
        state.update({f"camera_embedding.{k}": v for k, v in self.camera_embedding.state_dict().items()})
        return state

    def load_trainable_state(self, state: dict[str, Tensor]) -> None:
        params = dict(self.prior.unet.named_parameters())
        with torch.no_grad():
            for k, v in state.items():
                if k.startswith("lora."):
                    params[k[5:]].copy_(v)
        self.camera_embedding.load_state_dict(
            {k[len("camera_embedding.") :]: v for k, v in state.items() if k.startswith("camera_embedding.")}
        )


# The methods by name (methods.METHODS states their labels and default scales; CLI help, viewer menu and README read it)
GUIDANCES: dict[str, type[ScoreDistillation]] = {cls.name: cls for cls in (SDS, CSD, VSD)}
if list(GUIDANCES) != list(METHODS):
    raise RuntimeError("guidance.GUIDANCES and methods.METHODS must name the same methods")
GUIDANCE_DEFAULTS = {name: cls.default_scale for name, cls in GUIDANCES.items()}  # derived, for reading


def guidance_class(name: str) -> type[ScoreDistillation]:
    cls = GUIDANCES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown guidance {name!r}; expected one of {', '.join(GUIDANCES)}")
    return cls


def default_guidance_scale(name: str, prior=None) -> float:
    """The method's default scale for `prior` (a Prior, a prior folder, a layout name or None): the prior's profile
    override if it has one (profiles.py), else the method's own default_scale."""
    from .profiles import profile_for

    cls = guidance_class(name)
    return profile_for(prior).guidance_scales.get(cls.name, cls.default_scale)


def make_guidance(name: str, prior, guidance_scale: float | None = None, **kwargs) -> ScoreDistillation:
    cls = guidance_class(name)
    scale = default_guidance_scale(cls.name, prior) if guidance_scale is None else guidance_scale
    return cls(prior, guidance_scale=scale, **kwargs)
