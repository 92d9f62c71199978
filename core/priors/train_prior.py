"""The small-world text-to-image prior: a pixel-space diffusers `UNet2DConditionModel` (like IF stage I) conditioned
on the frozen text tower of the small-world CLIP (like Stable Diffusion's frozen CLIP text encoder).

    trainer = PriorTrainer(PriorConfig(...), text_encoder, tokenizer, renders)
    trainer.train_step() -> {"loss": ...}
    trainer.export(folder)      model_index.json unet/ text_encoder/ tokenizer/ scheduler/ (no vae): `load_prior` reads
                                it as the "pixel-clip" layout

Training: x0 = 2 * image - 1 at `resolution` px (renders box-downsampled), t ~ U{0..999}, eps-prediction MSE (with
Min-SNR-5 weighting: few steps are affordable on a shared CPU) under a DDPM cosine schedule ("squaredcos_cap_v2",
1000 steps). Prompts "a [material] <colour> <shape>[, <view word>]" are
embedded exactly as `Prior.encode_prompt` does (77 tokens, last hidden state, no attention mask) and cached (the text
tower is frozen). Classifier-free guidance: each prompt is replaced by "" with probability cfg_dropout.
An exponential moving average of the UNet weights (decay ema_decay, warmed up) is what gets exported.
`holdout_pairs`: shape x colour pairs left out of training, to measure generalisation to unseen combinations.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..io.training_run import TrainingRun
from ..worlds.captions import COLORS, SHAPES
from .renders import RenderSet
from .trainloop import TrainConfig, TrainState, check_box_downsample, optimizer_step, scheduled_lr

__all__ = [
    "DEFAULT_HOLDOUT",
    "NORM_GROUPS",
    "PriorConfig",
    "PriorTrainer",
    "build_scheduler",
    "build_unet",
    "text_encoder_from_clip",
]

# One unseen colour per shape (the diagonal of SHAPES x COLORS), never shown to the prior during training.
DEFAULT_HOLDOUT: list[list[str]] = [[s, c] for s, c in zip(SHAPES, list(COLORS)[1:], strict=False)]


@dataclass
class PriorConfig(TrainConfig):
    resolution: int = 32
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_heads: int = 4
    cfg_dropout: float = 0.1
    ema_decay: float = 0.995
    min_snr_gamma: float = 5.0  # 0: plain eps MSE
    beta_schedule: str = "squaredcos_cap_v2"
    # CFG scale the exported folder recommends for sampling (training.json "sampling"): this small pixel-space UNet's
    # shapes fall apart above ~1.5 (shipped prior, shape+colour top-1: 94% at 1.25, 61% at 2, 23% at 3).
    sample_guidance: float = 1.25
    holdout_pairs: list[list[str]] = field(default_factory=lambda: [list(p) for p in DEFAULT_HOLDOUT])
    # TrainConfig's fields with the prior's defaults
    batch_size: int = 32
    steps: int = 20000
    p_view: float = 0.8

    @classmethod
    def from_dict(cls, d: dict) -> PriorConfig:
        cfg = super().from_dict(d)
        cfg.block_out_channels = tuple(cfg.block_out_channels)  # a JSON list in config.json
        return cfg


NORM_GROUPS = 16  # GroupNorm groups of every UNet block: each of block_out_channels must be a multiple of it


def build_unet(cfg: PriorConfig, cross_attention_dim: int):
    """Pixel UNet 3 -> 3 channels: plain ResNet blocks at full resolution, cross-attention on the coarser levels."""
    from diffusers import UNet2DConditionModel

    n = len(cfg.block_out_channels)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1)
    up = ("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",)
    torch.manual_seed(cfg.seed)
    return UNet2DConditionModel(
        sample_size=cfg.resolution,
        in_channels=3,
        out_channels=3,
        layers_per_block=cfg.layers_per_block,
        block_out_channels=tuple(cfg.block_out_channels),
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=cfg.attention_heads,  # diffusers' name; it is the number of heads here
        norm_num_groups=NORM_GROUPS,
    )


def build_scheduler(cfg: PriorConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule=cfg.beta_schedule,
        prediction_type="epsilon",
        variance_type="fixed_small",
        clip_sample=True,
        clip_sample_range=1.0,
    )


def text_encoder_from_clip(clip_model):
    """A CLIPTextModel holding a copy of a CLIPModel's text tower (same config, same weights), frozen."""
    from transformers import CLIPTextModel

    text = CLIPTextModel(clip_model.config.text_config)
    sd = clip_model.text_model.state_dict()  # keys without a "text_model." prefix
    if all(k.startswith("text_model.") for k in text.state_dict()):
        sd = {f"text_model.{k}": v for k, v in sd.items()}
    text.load_state_dict(sd)
    return text.eval().requires_grad_(False)


class PriorTrainer:
    def __init__(self, cfg: PriorConfig, text_encoder, tokenizer, renders: RenderSet, unet=None):
        self.cfg, self.text_encoder, self.tokenizer = cfg, text_encoder.eval().requires_grad_(False), tokenizer
        check_box_downsample(renders.images.shape[1], cfg.resolution, "--resolution")
        holdout = {tuple(p) for p in cfg.holdout_pairs}
        keep = [i for i in range(len(renders)) if (renders.shape[i], renders.color[i]) not in holdout]
        if not keep:
            raise ValueError("no training renders left after removing the held-out shape x colour pairs")
        self.renders = renders.subset(keep) if len(keep) < len(renders) else renders
        self.unet = unet if unet is not None else build_unet(cfg, int(text_encoder.config.hidden_size))
        self.unet.train()
        self.ema = copy.deepcopy(self.unet).eval().requires_grad_(False)
        self.scheduler = build_scheduler(cfg)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.float()  # (1000,)
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=cfg.lr, weight_decay=0.01)
        self.state = TrainState({"unet": self.unet, "ema": self.ema}, self.optimizer, cfg.seed)
        self._cache: dict[str, Tensor] = {}

    # ---- data -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, captions: list[str]) -> Tensor:
        """(B, 77, D) last hidden states, as Prior.encode_prompt computes them; cached per caption."""
        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            tokens = self.tokenizer(
                missing,
                padding="max_length",
                max_length=int(self.tokenizer.model_max_length),
                truncation=True,
                return_tensors="pt",
            )
            hidden = self.text_encoder(tokens.input_ids)[0]  # (M, 77, D)
            self._cache.update(zip(missing, hidden, strict=True))
        return torch.stack([self._cache[c] for c in captions])

    def captions(self, index: list[int]) -> list[str]:
        """Caption variants for the items, each replaced by "" with probability cfg_dropout (CFG training)."""
        st, cfg = self.state, self.cfg
        texts = self.renders.random_captions(index, st.rng, cfg.p_material, cfg.p_view)
        drop = (torch.rand(len(texts), generator=st.gen) < cfg.cfg_dropout).tolist()
        return ["" if d else t for t, d in zip(texts, drop, strict=True)]

    def images(self, index: Tensor) -> Tensor:
        """(B, 3, r, r) in [-1, 1]."""
        x = self.renders.float_images(index)
        r = self.cfg.resolution
        if x.shape[-1] != r:
            x = F.interpolate(x, size=(r, r), mode="area")
        return x * 2 - 1

    def batch(self) -> tuple[Tensor, Tensor, list[str]]:
        index = torch.randint(len(self.renders), (self.cfg.batch_size,), generator=self.state.gen)
        return self.images(index), index, self.captions(index.tolist())

    # ---- training ---------------------------------------------------------------------------------------------
    def loss(self, x0: Tensor, emb: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Denoising MSE of eps-prediction for clean x0 (B, 3, r, r), embeddings (B, L, D), t (B,), noise like x0."""
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        eps = self.unet(x_t, t, encoder_hidden_states=emb).sample
        per_item = (eps - noise).square().mean(dim=(1, 2, 3))  # (B,)
        if self.cfg.min_snr_gamma > 0:  # Min-SNR weighting (Hang et al. 2023) for eps-prediction: min(snr, g) / snr
            snr = a.view(-1) / (1 - a.view(-1))
            per_item = per_item * snr.clamp(max=self.cfg.min_snr_gamma) / snr
        return per_item.mean()

    def draw(self) -> tuple[Tensor, list[str], Tensor, Tensor]:
        """A training batch: (x0 (B, 3, r, r), captions (B), t (B,), noise (B, 3, r, r))."""
        x0, _, captions = self.batch()
        t = torch.randint(0, 1000, (len(x0),), generator=self.state.gen)
        noise = torch.randn(x0.shape, generator=self.state.gen)
        return x0, captions, t, noise

    def train_step(self, fixed: tuple[Tensor, list[str], Tensor, Tensor] | None = None) -> dict:
        """One AdamW step on a fresh batch (or on `fixed`, a batch from `draw()`), then the EMA update."""
        st, cfg = self.state, self.cfg
        lr = scheduled_lr(self.optimizer, st.step, cfg)
        x0, captions, t, noise = fixed if fixed is not None else self.draw()
        loss = self.loss(x0, self.embed(captions), t, noise)
        optimizer_step(self.optimizer, loss, self.unet.parameters())
        st.step += 1
        decay = min(cfg.ema_decay, (1 + st.step) / (10 + st.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        return {"step": st.step, "loss": loss.item(), "lr": lr}

    def export(self, folder: str | os.PathLike, use_ema: bool = True, text_dtype: torch.dtype = torch.float32) -> Path:
        training = {
            "step": self.state.step,
            "weights": "ema" if use_ema else "raw",
            "config": asdict(self.cfg),
            "holdout_pairs": self.cfg.holdout_pairs,
            "sampling": sampling_settings(self.cfg),
        }
        return export_prior(
            self.ema if use_ema else self.unet,
            self.text_encoder,
            self.tokenizer,
            self.scheduler,
            folder,
            text_dtype,
            training,
        )


def sampling_settings(cfg: PriorConfig) -> dict:
    """training.json "sampling": how to sample the exported folder (read back by Prior.sampling_guidance)."""
    return {"guidance_scale": cfg.sample_guidance, "ddim_steps": 50, "eta": 1.0}


def export_prior(
    unet,
    text_encoder,
    tokenizer,
    scheduler,
    folder: str | os.PathLike,
    text_dtype: torch.dtype = torch.float32,
    training: dict | None = None,
) -> Path:
    """Write a pixel-clip prior folder atomically: model_index.json unet/ text_encoder/ tokenizer/ scheduler/, and
    training.json (config, step, held-out pairs, recommended sampling settings) when `training` is given."""
    import diffusers

    from ..io.atomic import atomic_path

    folder = Path(folder)
    with atomic_path(folder, is_dir=True) as tmp:
        tmp = Path(tmp)
        unet.save_pretrained(tmp / "unet")
        text = copy.deepcopy(text_encoder).to(text_dtype) if text_dtype != torch.float32 else text_encoder
        text.save_pretrained(tmp / "text_encoder")
        tokenizer.save_pretrained(tmp / "tokenizer")
        scheduler.save_pretrained(tmp / "scheduler")
        index = {"_class_name": "TriStudioPixelPriorPipeline", "_diffusers_version": diffusers.__version__}
        for name, obj in (
            ("scheduler", scheduler),
            ("text_encoder", text_encoder),
            ("tokenizer", tokenizer),
            ("unet", unet),
        ):
            index[name] = [type(obj).__module__.split(".")[0], type(obj).__name__]
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        if training is not None:
            (tmp / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    return folder


# Prompts of the periodic sample grid: 4 shape x colour pairs (the first one held out of training), 4 views each.
GRID_PROMPTS = [
    f"{caption}, {view}"
    for caption in ("an orange sphere", "a red cube", "a blue torus", "a green cone")
    for view in ("front view", "side view", "back view", "overhead view")
]


def _load_clip_model(path: str):
    """(CLIPModel, tokenizer) of a CLIP folder or a `train clip` run (its RUN/export), on the CPU (core/priors/clip.py
    load_clip: offline, one error line naming the path)."""
    from .clip import load_clip

    clip = load_clip(path, device="cpu")
    return clip.model, clip.tokenizer


def run_prior_training(
    work: str | os.PathLike,
    cfg: PriorConfig | None = None,
    clip: str | None = None,
    data: list[str] | None = None,
    resume: bool = False,
    steps: int | None = None,
    ckpt_every: int = 100,
    sample_every: int = 500,
    grid_steps: int = 50,
    callback=None,
) -> Path:
    """Train (or resume) the prior in `work`; every sample_every steps export work/export (EMA UNet) and write
    samples/grid_<step>.png (GRID_PROMPTS, grid_steps DDIM steps with eta 1, CFG cfg.sample_guidance). Returns the
    export folder."""
    from .ddim import sample_images, save_sample_grid
    from .load import load_prior
    from .renders import load_render_sets
    from .trainloop import open_run, run_config, run_steps

    work = Path(work)
    run, saved = open_run(work, resume, ckpt_every)
    if saved is not None:
        clip, data = saved["clip"], saved["data"]
    elif not clip or not data:
        raise ValueError("the prior needs --clip (a small-world CLIP folder) and --data (render-set folders)")
    cfg = run_config(run, saved, "prior", PriorConfig, cfg, steps)
    run.write_config({"kind": "prior", "prior": asdict(cfg), "clip": str(clip), "data": list(data)})
    clip_model, tokenizer = _load_clip_model(clip)
    trainer = PriorTrainer(cfg, text_encoder_from_clip(clip_model), tokenizer, load_render_sets(data))
    del clip_model
    (work / "samples").mkdir(parents=True, exist_ok=True)

    def snapshot() -> None:
        export = trainer.export(work / "export")
        images = sample_images(
            load_prior(export, device="cpu"), GRID_PROMPTS, steps=grid_steps, guidance=cfg.sample_guidance, eta=1.0
        )
        save_sample_grid(work / "samples" / f"grid_{trainer.state.step:06d}.png", images, cols=4, scale=2)

    run_steps(run, trainer, "prior", sample_every, snapshot, callback, resume)
    if not (work / "export" / "model_index.json").exists():
        snapshot()
    return work / "export"


def export_from_checkpoint(
    work: str | os.PathLike, folder: str | os.PathLike, use_ema: bool = True, text_dtype: torch.dtype = torch.float16
) -> Path:
    """Export a prior folder from the run's latest checkpoint without loading the training data (e.g. to ship a
    running job's latest state). text_dtype float16 halves the text encoder (lossless when the CLIP was itself saved
    in fp16)."""
    from ..io.run_checkpoints import load_latest

    work = Path(work)
    saved = TrainingRun(work).read_config()
    cfg = PriorConfig.from_dict(saved["prior"])
    clip_model, tokenizer = _load_clip_model(saved["clip"])
    text = text_encoder_from_clip(clip_model)
    loaded = load_latest(work)
    if loaded is None:
        raise FileNotFoundError(f"{work} holds no checkpoint yet")
    tensors, meta = loaded.tensors, loaded.meta
    prefix = "ema." if use_ema else "unet."
    unet = build_unet(cfg, int(text.config.hidden_size))
    unet.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    training = {
        "step": int(meta["step"]),
        "weights": "ema" if use_ema else "raw",
        "config": asdict(cfg),
        "holdout_pairs": cfg.holdout_pairs,
        "clip": saved["clip"],
        "sampling": sampling_settings(cfg),
    }
    return export_prior(unet.eval(), text, tokenizer, build_scheduler(cfg), folder, text_dtype, training)
