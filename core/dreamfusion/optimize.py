"""The per-prompt DreamFusion optimisation: one object, driven step by step (CLI) or from a thread (viewer).

    df = DreamFusion(DreamFusionConfig(prompt="a red cube"), prior)
    metrics = df.step()                         # one training step: random camera, shading, view prompt, guidance
    out = df.render(cameras, 64, "lambertian")  # {"image", "depth", "opacity", "normal"}, images in [0, 1]
    df.save(run_dir); df = DreamFusion.load(run_dir, prior)   # run_dir/checkpoints/step-N, newest readable one
    df.run(steps, out_dir=..., on_step=callback, should_stop=flag.is_set)

Determinism: every random draw (cameras, shading, light, timesteps, noise) comes from one torch.Generator whose state
is checkpointed with the weights and Adam's moments, so a resumed run continues bit for bit (CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ..cameras import Cameras
from ..io.checkpoint import (
    generator_state_from_tensor,
    generator_state_to_tensor,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
)
from ..io.run_checkpoints import has_steps, load_latest, save_step
from ..io.training_run import TrainingRun
from ..render.occupancy import DensityGrid, OccupancyGridSampler
from ..render.volume import RenderOptions, render_rays
from ..worlds.captions import VIEW_WORDS, view_word
from .field import DensityAlbedoField, DirectionBackground
from .guidance import default_guidance_scale, make_guidance
from .profiles import AMBIENT, profile_for
from .prompts import check_prompt, fit_view_prompts
from .regularisers import entropy_loss, opacity_loss, orientation_loss, sparsity_loss
from .schedules import annealed_t_range, lr_factor
from .shading import shade
from .views import ViewRanges, sample_views

__all__ = ["DreamFusionConfig", "DreamFusion", "FORMAT", "resolve_for_prior"]

FORMAT = "tristudio-dreamfusion"


@dataclass
class DreamFusionConfig:
    prompt: str
    negative_prompt: str = ""
    guidance: str = "sds"  # a key of guidance.GUIDANCES
    guidance_scale: float | None = None  # None: the method's default for this prior (guidance.default_guidance_scale)
    steps: int = 1000
    lr: float = 1e-2
    batch_size: int = 1
    resolution: int | None = None  # training image size (the prior resizes to its own); None: the prior's, <= 64
    render_resolution: int | None = None  # render the NeRF at this size and upsample (bilinear) to `resolution`
    sampler: str = "grid"  # "grid": density-grid proposal + `samples` field samples on rays that can hit something
    #                        "uniform": the shared renderer's `samples` stratified + `importance_samples` per ray
    samples: int = 24  # field samples per ray
    importance_samples: int = 16  # (uniform sampler only)
    grid_resolution: int = 32  # density grid side (core/render/occupancy.py)
    grid_every: int = 16  # grid refresh period in steps
    grid_decay: float = 0.95
    proposal_samples: int = 64  # grid lookups per ray
    min_ray_opacity: float = 1e-2  # rays the grid sees as more transparent than this are not sampled
    view_dependent: bool = True
    t_range: tuple[float, float] = (0.02, 0.98)  # guidance timesteps U[t_min, t_max] * T at step 0
    t_max_final: float = 0.98  # t_max anneals linearly to this over t_anneal_steps (schedules.annealed_t_range)
    t_anneal_steps: int = 0
    lr_final_ratio: float | None = None  # lr decays exponentially to lr * lr_final_ratio at lr_decay_steps
    lr_decay_steps: int | None = None  # from lr_decay_start (schedules.lr_factor); None: the prior's profile
    lr_decay_start: int | None = None  # (small world: constant to step 200, then down to 0.1% at step 500)
    albedo_warmup: float = 0.1  # fraction of the steps rendered with albedo only
    p_albedo: float = 0.2  # after the warm-up: P(albedo); P(textureless); the rest lambertian
    p_textureless: float = 0.3
    ambient: float | None = None  # None: 0.1 (DreamFusion), or the worlds' 0.35 with light "world"
    light: str = "auto"  # "camera": DreamFusion's point light near the camera, jittered per step | "world": the
    #                      procedural worlds' fixed directional light (core/worlds/render.py Shading.light_dir)
    lambda_orient: float = 1e-2
    lambda_entropy: float = 1e-3
    lambda_opacity: float = 0.0
    lambda_sparsity: float = 0.0  # regularisers.sparsity_loss
    background: str = "auto"  # "mlp": DreamFusion's MLP of the ray direction | "white": fixed white (the small world)
    background_aug: float = 0.0  # P(a step's background is a random solid colour instead): the object cannot hide
    #                              its colour in the background (threestudio's random_aug)
    seed: int = 0
    plane_resolution: int | None = None  # None: the training resolution (a texel per training pixel at the object)
    plane_channels: int = 16
    hidden: int = 32
    bound: float = 0.5
    blob_density: float = 5.0
    blob_radius: float = 0.25
    views: ViewRanges = field(default_factory=ViewRanges)

    @classmethod
    def from_dict(cls, d: dict, saved: bool = True) -> "DreamFusionConfig":
        """From asdict() output as JSON gives it back (lists, dicts). `saved` (a checkpoint's model.json, a run's
        config.json): settings it predates take the value that leaves them off, so an older run resumes as it ran;
        otherwise (some fields given, as the viewer's panel does) they take their defaults."""
        d = {**_OFF_WHEN_ABSENT, **d} if saved else dict(d)
        if isinstance(d.get("views"), dict):
            d["views"] = ViewRanges(**{k: tuple(v) for k, v in d["views"].items()})
        if "t_range" in d:
            d["t_range"] = tuple(d["t_range"])
        return cls(**d)


# settings added after checkpoints were first written, with the value that reproduces the runs written before them
_OFF_WHEN_ABSENT = {
    "t_max_final": 0.98,
    "t_anneal_steps": 0,
    "lr_final_ratio": 1.0,
    "lr_decay_steps": 0,
    "lr_decay_start": 0,
    "lambda_sparsity": 0.0,
}


def resolve_for_prior(cfg: DreamFusionConfig, prior) -> DreamFusionConfig:
    """Fill the config's "auto" / None settings from the prior's profile (profiles.py; in place; returns cfg).

    The small-world prior: background white, the worlds' light, ambient 0.35, its own 32 px, SDS at scale 5, the lr
    decayed after step 200 to 0.1% at step 500 (it drifts from its best shape otherwise). Any other
    prior (Stable Diffusion, DeepFloyd IF): DreamFusion's MLP background, camera light, ambient 0.1, 64 px renders
    (resized to the prior's input as DreamFusion does). Tri-planes: one texel per training pixel unless set."""
    profile = profile_for(prior)
    if cfg.background == "auto":
        cfg.background = profile.background
    if cfg.light == "auto":
        cfg.light = profile.light
    if cfg.ambient is None:
        cfg.ambient = AMBIENT.get(cfg.light, AMBIENT["camera"])
    if cfg.resolution is None:
        cfg.resolution = min(int(getattr(prior, "resolution", profile.max_resolution)), profile.max_resolution)
    if cfg.guidance_scale is None:
        cfg.guidance_scale = default_guidance_scale(cfg.guidance, prior)
    if cfg.lr_final_ratio is None:
        cfg.lr_final_ratio = profile.lr_final_ratio
    if cfg.lr_decay_steps is None:
        cfg.lr_decay_steps = profile.lr_decay_steps
    if cfg.lr_decay_start is None:
        cfg.lr_decay_start = profile.lr_decay_start
    if cfg.plane_resolution is None:  # finer planes than the supervision grow noise the prior cannot see
        cfg.plane_resolution = int(cfg.render_resolution or cfg.resolution)
    return cfg


class DreamFusion:
    def __init__(self, cfg: DreamFusionConfig, prior, device: str | torch.device | None = None):
        cfg.prompt = check_prompt(cfg.prompt)
        self.cfg = resolve_for_prior(cfg, prior)
        self.prior = prior
        self.device = torch.device(device) if device is not None else prior.device
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            self.field = DensityAlbedoField.from_config(cfg).to(self.device)
            self.background = DirectionBackground().to(self.device)
            self.guidance = make_guidance(cfg.guidance, prior, cfg.guidance_scale, t_range=cfg.t_range)  # VSD: LoRA
        if cfg.sampler not in ("grid", "uniform"):
            raise ValueError(f"unknown sampler {cfg.sampler!r}; expected 'grid' or 'uniform'")
        if cfg.background not in ("mlp", "white"):
            raise ValueError(f"unknown background {cfg.background!r}; expected 'mlp' or 'white'")
        if cfg.light not in ("camera", "world"):
            raise ValueError(f"unknown light {cfg.light!r}; expected 'camera' or 'world'")
        self.grid = DensityGrid(cfg.grid_resolution, cfg.bound, cfg.grid_decay, device=self.device)
        self._grid_ready = False
        self.optimizer = torch.optim.Adam(
            list(self.field.parameters()) + list(self.background.parameters()), lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15
        )
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step_count = 0
        self.lock = threading.Lock()  # the viewer renders while a worker thread steps
        self._embed_prompts()

    # ------------------------------------------------------------------------------------------------ prompts
    def _embed_prompts(self) -> None:
        words = list(VIEW_WORDS) if self.cfg.view_dependent else []
        base, self._view_texts, self.prompt_note = fit_view_prompts(self.cfg.prompt, words, self.prior)
        texts = [base, *self._view_texts.values()]
        self._base_text = base
        emb = self.prior.encode_prompt(texts, self.cfg.negative_prompt or None)
        self._cond = {t: emb.cond[i : i + 1] for i, t in enumerate(texts)}
        self._uncond = emb.uncond[:1]
        self._negative = self.prior.encode_prompt([self.cfg.negative_prompt]).cond if self.cfg.negative_prompt else None

    def prompts_for(self, yaw: Tensor, pitch: Tensor) -> list[str]:
        if not self.cfg.view_dependent:
            return [self._base_text] * yaw.shape[0]
        words = view_word(yaw, pitch)
        return [self._view_texts[w] for w in words]

    def _embeddings(self, prompts: list[str]):
        from ..priors.prior import PromptEmbeddings

        n = len(prompts)
        return PromptEmbeddings(
            cond=torch.cat([self._cond[p] for p in prompts]),
            uncond=self._uncond.expand(n, -1, -1),
            negative=self._negative.expand(n, -1, -1) if self._negative is not None else None,
        )

    # ------------------------------------------------------------------------------------------------ rendering
    def render_options(self) -> RenderOptions:
        return RenderOptions(
            ray_start="auto",
            ray_end="auto",
            box_warp=2 * self.cfg.bound,
            depth_resolution=self.cfg.samples,
            depth_resolution_importance=self.cfg.importance_samples,
            density_activation="identity",
            signed_output=False,
            white_back=False,
            deterministic=False,
            chunk=4096,
        )

    def render(
        self,
        cameras: Cameras,
        resolution: int,
        shading: str = "albedo",
        light_positions: Float[Tensor, "n 3"] | None = None,
        background: bool | Tensor = True,
        deterministic: bool = True,
    ) -> dict[str, Tensor]:
        """Render N cameras at resolution^2: image (N,3,R,R) in [0,1], depth (ray distance), opacity, normal.

        background: True = the configured background (MLP of the direction, or white), False = none (black), or an
        (N, 3) tensor of solid colours."""
        cameras = cameras.to(self.device)
        rays = cameras.rays(resolution)
        sampler = None  # "uniform": the renderer's stratified + importance passes
        if self.cfg.sampler == "grid":
            self.ensure_grid()
            sampler = OccupancyGridSampler(
                self.grid, self.cfg.samples, self.cfg.proposal_samples, self.cfg.min_ray_opacity
            )
        opts = self.render_options().replace(deterministic=deterministic)
        out = render_rays(self.field.field_fn(), rays.origins, rays.directions, opts, sampler)
        active = out.active if out.active is not None else torch.ones_like(out.opacity[..., 0], dtype=torch.bool)
        albedo, depth, opacity = out.features, out.depth, out.opacity  # (n, m, 3), (n, m, 1), (n, m, 1)
        # the shading point: each ray's expected surface (no gradient through its position), on sampled rays only
        surface = rays.origins + depth.detach() * rays.directions  # (n, m, 3)
        normals = torch.zeros_like(rays.directions)  # (n, m, 3); zero on skipped rays
        if active.any():
            normals[active] = self.field.normals(surface[active][None])[0]
        if light_positions is None and self.cfg.light == "world":  # the worlds' directional light
            from ..worlds.render import Shading

            light_dirs = F.normalize(torch.tensor(Shading.light_dir, device=surface.device), dim=0).expand_as(surface)
        else:
            if light_positions is None:  # a light at the camera
                light_positions = cameras.origins
            light_dirs = F.normalize(light_positions[:, None, :] - surface, dim=-1)
        rgb = shade(albedo, opacity, normals, light_dirs, shading, self.cfg.ambient)
        if isinstance(background, Tensor):
            rgb = rgb + (1 - opacity) * background.to(rgb)[:, None, :]
        elif background:
            bg = self.background(rays.directions) if self.cfg.background == "mlp" else torch.ones_like(rgb)
            rgb = rgb + (1 - opacity) * bg
        n = len(cameras)

        def img(x: Tensor) -> Tensor:
            return x.permute(0, 2, 1).reshape(n, x.shape[-1], resolution, resolution)

        return {
            "image": img(rgb),
            "depth": img(depth),
            "opacity": img(opacity),
            "normal": img(normals),
            "_rays": rays.directions,
            "_normals": normals,
            "_opacity": opacity,
        }

    def ensure_grid(self) -> None:
        """Fill the density grid from the field the first time it is needed (a fresh run or the viewer)."""
        if not self._grid_ready:
            self.update_grid(torch.Generator().manual_seed(self.cfg.seed + 2))

    def update_grid(self, gen: torch.Generator) -> None:
        self.grid.update(self.field.density, gen)
        self._grid_ready = True

    def _shading_mode(self) -> str:
        if self.step_count < self.cfg.albedo_warmup * self.cfg.steps:
            return "albedo"
        u = float(torch.rand((), generator=self.gen))
        if u < self.cfg.p_albedo:
            return "albedo"
        return "textureless" if u < self.cfg.p_albedo + self.cfg.p_textureless else "lambertian"

    def _light_positions(self, cameras: Cameras) -> Tensor:
        """A point light near the camera direction: origin direction + N(0, 0.3^2) jitter, at 1-1.5x its distance."""
        o = cameras.origins.cpu()
        jitter = torch.randn(o.shape, generator=self.gen) * 0.3
        scale = 1.0 + 0.5 * torch.rand(o.shape[0], 1, generator=self.gen)
        d = F.normalize(F.normalize(o, dim=-1) + jitter, dim=-1)
        return (d * o.norm(dim=-1, keepdim=True) * scale).to(self.device)

    # ------------------------------------------------------------------------------------------------ training
    def step(self) -> dict:
        """One optimisation step; returns scalar metrics (loss terms, shading, timestep, view)."""
        cfg = self.cfg
        self._check_finite()
        # The renderer's stratified jitter and importance draws use torch's global RNG: seed it from our generator
        # inside a fork, so every draw of a step follows from the checkpointed generator state.
        step_seed = int(torch.randint(0, 2**62, (), generator=self.gen))
        with self.lock, torch.random.fork_rng(devices=[]):
            torch.manual_seed(step_seed)
            if cfg.sampler == "grid" and (self.step_count % cfg.grid_every == 0 or not self._grid_ready):
                self.update_grid(self.gen)
            t_range, lr = self.schedule(self.step_count)
            self.guidance.t_range = t_range
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            cams, yaw, pitch = sample_views(cfg.batch_size, cfg.views, self.gen)
            mode = self._shading_mode()
            lights = self._light_positions(cams) if cfg.light == "camera" else None
            res = cfg.render_resolution or cfg.resolution
            bg: bool | Tensor = True
            if cfg.background_aug > 0 and float(torch.rand((), generator=self.gen)) < cfg.background_aug:
                bg = torch.rand(len(cams), 3, generator=self.gen)
            out = self.render(cams, res, mode, lights, background=bg, deterministic=False)
            image = out["image"]  # (n, 3, res, res)
            if res != cfg.resolution:
                image = F.interpolate(
                    image, size=(cfg.resolution, cfg.resolution), mode="bilinear", align_corners=False
                )
            prompts = self.prompts_for(yaw, pitch)
            emb = self._embeddings(prompts)
            cam_cond = cams.cam2world.reshape(len(cams), 16).to(self.device)
            g = self.guidance(image, emb, self.gen, cameras=cam_cond)
            o = out["_opacity"].clamp(1e-5, 1 - 1e-5)
            orient = orientation_loss(o, out["_normals"], out["_rays"])  # normals facing away from the camera
            entropy = entropy_loss(o)
            opacity = opacity_loss(o)
            sparsity = sparsity_loss(out["_opacity"])
            loss = (
                g.loss
                + cfg.lambda_orient * orient
                + cfg.lambda_entropy * entropy
                + cfg.lambda_opacity * opacity
                + cfg.lambda_sparsity * sparsity
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"DreamFusion: non-finite loss at step {self.step_count}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._check_finite()
            metrics = {
                "step": self.step_count,
                "loss": float(loss.detach()),
                "guidance_grad_norm": g.metrics["grad_norm"],
                "orient": float(orient.detach()),
                "entropy": float(entropy.detach()),
                "opacity": float(opacity.detach()),
                "sparsity": float(sparsity.detach()),
                "t": int(g.t[0]),
                "t_max": t_range[1],
                "lr": lr,
                "shading": mode,
                "prompt": prompts[0],
            }
            metrics.update(self.guidance.after_step(g, emb, cam_cond, self.gen))
            self.step_count += 1
        return metrics

    def schedule(self, k: int) -> tuple[tuple[float, float], float]:
        """The guidance's (t_min, t_max) and the field's learning rate at step k (schedules.py)."""
        cfg = self.cfg
        t_range = annealed_t_range(k, cfg.t_range, cfg.t_max_final, cfg.t_anneal_steps)
        return t_range, cfg.lr * lr_factor(k, cfg.lr_final_ratio, cfg.lr_decay_steps, cfg.lr_decay_start)

    def _check_finite(self) -> None:
        if not field_is_finite(self):
            raise FloatingPointError(f"DreamFusion: non-finite (NaN/Inf) values in the field at step {self.step_count}")

    def run(
        self,
        steps: int,
        out_dir: str | Path | None = None,
        checkpoint_every: int = 100,
        on_step: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Step until `steps` total steps (counting resumed ones), writing log.jsonl and checkpoints to out_dir (a
        core/io/training_run.py run folder; a log line's "step" is the index of the step taken, from 0)."""
        run = None
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            run = TrainingRun(out_dir, checkpoint_every=checkpoint_every, total_steps=steps, log_step_is_index=True)
            run.truncate_log(self.step_count)
        while self.step_count < steps:
            if should_stop is not None and should_stop():
                break
            t0 = time.perf_counter()
            m = self.step()
            m["seconds"] = time.perf_counter() - t0
            if run is not None:
                run.log(m)
            if on_step is not None:
                on_step(m)
            if run is not None:
                run.maybe_checkpoint(self.step_count, lambda: self.save(out_dir))
        return self.step_count

    # ------------------------------------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> tuple[dict[str, Tensor], dict]:
        tensors = {f"field.{k}": v for k, v in self.field.state_dict().items()}
        tensors.update({f"background.{k}": v for k, v in self.background.state_dict().items()})
        opt_t, opt_meta = optimizer_state_to_tensors(self.optimizer, "optimizer")
        tensors.update(opt_t)
        tensors["rng"] = generator_state_to_tensor(self.gen)
        if self._grid_ready:
            tensors["density_grid"] = self.grid.density
        meta = {
            "format": FORMAT,
            "version": 1,
            "step": self.step_count,
            "config": asdict(self.cfg),
            "optimizer": opt_meta,
        }
        extra_tensors, extra_meta = self.guidance.extra_state()  # the method's own state (VSD: LoRA + its Adam)
        tensors.update(extra_tensors)
        meta.update(extra_meta)
        return tensors, meta

    def save(self, run_dir: str | Path) -> Path:
        """Checkpoint RUN_DIR/checkpoints/step-N (one atomic unit, core/io/run_checkpoints.py); returns its folder."""
        with self.lock:
            tensors, meta = self.state_tensors()
            return save_step(run_dir, self.step_count, tensors, meta)

    @classmethod
    def load(cls, run_dir: str | Path, prior, device=None, warn=print, read_only: bool = False) -> "DreamFusion":
        """The run's newest readable checkpoint (an older one, with a warning, when the newest is corrupt).
        `read_only`: the folder is left as it is (a viewer beside a live run; run_checkpoints.load_latest)."""
        loaded = load_latest(run_dir, warn=warn, read_only=read_only)
        if loaded is None:
            raise FileNotFoundError(f"{run_dir} holds no DreamFusion checkpoint")
        tensors, meta, folder = loaded.tensors, loaded.meta, loaded.folder
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder} is not a DreamFusion checkpoint (format {meta.get('format')!r})")
        df = cls(DreamFusionConfig.from_dict(meta["config"]), prior, device)
        df.field.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("field.")})
        df.background.load_state_dict({k[11:]: v for k, v in tensors.items() if k.startswith("background.")})
        optimizer_state_from_tensors(df.optimizer, tensors, meta["optimizer"], "optimizer")
        generator_state_from_tensor(df.gen, tensors["rng"])
        if "density_grid" in tensors:
            df.grid.load(tensors["density_grid"])
            df._grid_ready = True
        df.guidance.load_extra_state(tensors, meta)
        df.step_count = int(meta["step"])
        return df

    @staticmethod
    def has_checkpoint(run_dir: str | Path) -> bool:
        return has_steps(run_dir)  # committed or not: load_latest commits a whole one again if `latest` is gone


def field_is_finite(df: DreamFusion) -> bool:
    params = list(df.field.parameters()) + list(df.background.parameters())
    return all(bool(torch.isfinite(p).all()) for p in params)
