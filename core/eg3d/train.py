"""EG3D training from posed 2D images: `tristudio train eg3d --data D --preset P --out RUN_DIR`, P one of
core/eg3d/presets.py's tiny | small | medium | ffhq512.

One step (global batch B, split strided over K ranks, see core/eg3d/ddp.py):

    inputs  = draw_step_inputs(seed, step)         reals from the data order, z, rendering poses, GPC swaps, points
    Gmain   L_G                                    Adam step on G
    Greg    L_density * interval                   every density_reg_interval steps, its own Adam step on G
    Dmain   L_D                                    Adam step on D
    Dreg    L_R1 * interval                        every r1_interval steps, its own Adam step on D
    G_ema   <- lerp(G, G_ema, beta)

Everything random is a function of (seed, step) or of RNG states saved in the checkpoint, so a killed run resumed
from its last checkpoint reaches the same weights as an uninterrupted one (bit for bit on CPU):
  - data order: sample q of the stream is perm_{q // M}[q % M] with perm_e = randperm(M, seed, e)  (position = step * B)
  - per-step inputs: a torch.Generator seeded from (seed, step)
  - renderer jitter, synthesis noise, augmentation: the global torch RNG, whose state (per rank) is checkpointed,
    as are numpy's and Python's.

Run folder: core/io/training_run.py's (config.json = the resolved TrainConfig, log.jsonl every log_every steps,
checkpoints/ every snap steps holding G, D, G_ema, Adam states, RNG states, step and data position, losses.png), plus
    RUN_DIR/model/                       G_ema as a tristudio model folder (load_generator / `--model`)
    RUN_DIR/samples/step-XXXXXXXX.png    G_ema grid: rows = fixed seeds, columns = fixed yaws
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from rich.markup import escape

from ..io.checkpoint import CheckpointError
from ..io.images import save_png
from ..io.run_checkpoints import Loaded, latest_step, save_step, step_folder
from ..io.training_run import TrainingRun
from . import loss as L
from .augment import AdaTuner, AugmentPipe
from .ddp import DistInfo, all_reduce_grads, all_reduce_mean, average_buffers, barrier, init_distributed
from .load import save_generator

__all__ = [
    "TrainConfig",
    "TrainingError",
    "NaNLossError",
    "Trainer",
    "TrainingSet",
    "open_training_set",
    "train",
    "latest_checkpoint",
    "sample_grid",
    "data_index_stream",
]

CKPT_FORMAT = "tristudio-eg3d-train"


class TrainingError(RuntimeError):
    """A run that cannot start or continue (bad dataset, incompatible resume, ...)."""


class NaNLossError(TrainingError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    preset: str = "tiny"
    kimg: float = 1.0  # training length in thousands of real images shown
    batch: int = 4  # global batch (split across ranks)
    seed: int = 0
    glr: float = 0.0025
    dlr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    ema_kimg: float | None = None  # None: batch * 10 / 32 (EG3D)
    ema_rampup: float | None = 0.05
    augment_p: float = 0.0  # fixed augmentation probability (0: off)
    ada_target: float | None = None  # tune p with ADA's heuristic toward this r_t (e.g. 0.6)
    depth_resolution: int | None = None  # coarse samples per ray (None: the preset's)
    depth_resolution_importance: int | None = None  # importance samples per ray (None: the preset's)
    snap: int = 50  # checkpoint + model export every N steps (and at the end)
    sample_every: int = 50  # sample grid every N steps (0: only at the end)
    log_every: int = 1  # log line every N steps
    keep: int = 3  # checkpoints kept
    grid_seeds: int = 4  # rows of the sample grid
    grid_yaws: int = 5  # columns of the sample grid
    device: str = "auto"
    threads: int | None = None  # torch CPU threads per process
    loss: dict = field(default_factory=dict)  # LossConfig overrides

    def loss_config(self) -> L.LossConfig:
        return L.LossConfig.from_dict(self.loss)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    @property
    def total_steps(self) -> int:
        return max(1, int(round(self.kimg * 1000 / self.batch)))


# ----------------------------------------------------------------------------------------------- data


class TrainingSet:
    """An EG3D dataset as the trainer reads it: labels (M, 25), resolution, image(i) -> uint8 (3, S, S).

    Decoded images are kept in memory (the small CPU datasets fit; a 512 px FFHQ would be decoded per access).
    """

    def __init__(self, dataset, cache_bytes: int = 2 << 30):
        self.ds = dataset
        self.labels = dataset.labels
        self.resolution = int(dataset.resolution)
        self._cache: dict[int, torch.Tensor] | None = (
            {} if len(dataset) * 3 * self.resolution**2 <= cache_bytes else None
        )

    def __len__(self) -> int:
        return len(self.ds)

    def image(self, i: int) -> torch.Tensor:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img, _ = self.ds[i]
        if self._cache is not None:
            self._cache[i] = img
        return img


def open_training_set(path: str) -> TrainingSet:
    """Check then open an EG3D dataset (folder or zip) with core/data; any problem stops here with clear lines."""
    from ..data import DatasetError, EG3DDataset, check_dataset

    if not path:
        raise TrainingError("train: --data DATASET is required (an EG3D dataset folder or zip)")
    report = check_dataset(path)
    if not report.ok:
        shown = report.problems[:10]
        more = len(report.problems) - len(shown)
        lines = "\n".join(f"  problem: {p}" for p in shown) + (f"\n  ... and {more} more" if more > 0 else "")
        raise TrainingError(
            f"dataset {path} cannot be used ({len(report.problems)} problem"
            f"{'s' if len(report.problems) > 1 else ''}; `tristudio dataset check` lists them):\n"
            f"{lines}"
        )
    try:
        ds = EG3DDataset(path)
    except (DatasetError, OSError, ValueError) as exc:
        raise TrainingError(f"dataset {path}: {exc}") from None
    if len(ds) == 0:
        raise TrainingError(f"dataset {path} holds no labelled images")
    return TrainingSet(ds)


def data_index_stream(seed: int, size: int, start: int, count: int) -> list[int]:
    """Dataset indices of stream positions start .. start + count - 1 (a fresh permutation per epoch)."""
    out = []
    cache: dict[int, list[int]] = {}
    for q in range(start, start + count):
        epoch, k = divmod(q, size)
        if epoch not in cache:
            g = torch.Generator().manual_seed(_mix(seed, 0xDA7A, epoch))
            cache[epoch] = torch.randperm(size, generator=g).tolist()
        out.append(cache[epoch][k])
    return out


def _mix(*xs: int) -> int:
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 % (1 << 64)
        h ^= h >> 29
    return h % (1 << 63)


# ----------------------------------------------------------------------------------------------- networks


def build_networks(cfg: TrainConfig, img_resolution: int):
    from .discriminator import DualDiscriminator, discriminator_kwargs
    from .generator import TriPlaneGenerator
    from .presets import preset

    g_kwargs = preset(cfg.preset)
    if g_kwargs["img_resolution"] != img_resolution:
        raise TrainingError(
            f"preset {cfg.preset!r} makes {g_kwargs['img_resolution']} px images but the dataset is "
            f"{img_resolution} px; pick the matching preset or re-make the dataset at that size"
        )
    rk = g_kwargs["rendering_kwargs"]
    if cfg.depth_resolution:
        rk["depth_resolution"] = int(cfg.depth_resolution)
    if cfg.depth_resolution_importance is not None:
        rk["depth_resolution_importance"] = int(cfg.depth_resolution_importance)
    G = TriPlaneGenerator(**g_kwargs)
    D = DualDiscriminator(**discriminator_kwargs(cfg.preset, img_resolution))
    return G, D, g_kwargs


def _ema_kimg(cfg: TrainConfig) -> float:
    return cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32


# ----------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Holds the networks, optimisers and counters of one run; `step()` advances one global batch."""

    def __init__(self, cfg: TrainConfig, dataset, dist_info: DistInfo | None = None, log=print):
        self.cfg = cfg
        self.dist = dist_info or DistInfo()
        self.log = log
        self.lcfg = cfg.loss_config()
        if cfg.batch % self.dist.world_size:
            raise TrainingError(f"--batch {cfg.batch} is not divisible by the {self.dist.world_size} processes")
        self.dataset = dataset
        self.labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.float32)  # (M, 25)
        if self.labels.ndim != 2 or self.labels.shape[1] != 25:
            raise TrainingError(f"dataset labels must be (M, 25) EG3D camera labels, got {tuple(self.labels.shape)}")
        dev = self.dist.device
        # Same initial weights on every rank: seeded construction.
        torch.manual_seed(cfg.seed)
        self.G, self.D, self.g_kwargs = build_networks(cfg, dataset.resolution)
        self.G.to(dev).train()
        self.D.to(dev).train()
        self.G_ema = L.clone_module(self.G).to(dev)
        self.opt_G = L.make_adam(
            self.G.parameters(),
            cfg.glr,
            cfg.betas,
            cfg.eps,
            self.lcfg.density_reg_interval if self.lcfg.density_reg > 0 else 0,
        )
        self.opt_D = L.make_adam(
            self.D.parameters(), cfg.dlr, cfg.betas, cfg.eps, self.lcfg.r1_interval if self.lcfg.r1_gamma > 0 else 0
        )
        self.augment = AugmentPipe(cfg.augment_p) if (cfg.augment_p > 0 or cfg.ada_target) else None
        self.ada = AdaTuner(cfg.ada_target) if cfg.ada_target else None
        self.step_idx = 0
        self.cur_nimg = 0
        self.nrr_default = int(self.G.neural_rendering_resolution)
        self._reseed_globals(cfg.seed)

    # --------------------------------------------------------------------------------- RNG
    def _reseed_globals(self, seed: int) -> None:
        r = self.dist.rank
        torch.manual_seed(_mix(seed, 0x70C4, r))
        np.random.seed(_mix(seed, 0x9A9, r) % (2**32))
        random.seed(_mix(seed, 0x9F, r))

    # --------------------------------------------------------------------------------- data
    def real_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.cfg.batch
        idx = data_index_stream(self.cfg.seed, len(self.dataset), step * b, b)
        imgs = torch.stack([torch.as_tensor(self.dataset.image(i)) for i in idx])  # (b, 3, s, s) uint8
        imgs = imgs.to(torch.float32) / 127.5 - 1
        return imgs, self.labels[idx]

    def step_inputs(self, step: int) -> L.StepInputs:
        real_img, real_c = self.real_batch(step)
        g = torch.Generator().manual_seed(_mix(self.cfg.seed, 0x57E9, step))
        inp = L.draw_step_inputs(g, real_img, real_c, self.labels, self.G.z_dim, self.lcfg)
        return inp.shard(self.dist.rank, self.dist.world_size).to(self.dist.device)

    # --------------------------------------------------------------------------------- one step
    def _phase(self, name: str, net, opt, loss_fn, gain: float = 1.0) -> float:
        """One optimiser step of `net` on loss_fn() * gain; only `net` takes gradients meanwhile (as StyleGAN2's
        phases: the other network stays frozen)."""
        net.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        out = loss_fn()
        loss = out[0] if isinstance(out, tuple) else out
        value = float(all_reduce_mean(loss.detach().reshape(1), self.dist.world_size))
        if not math.isfinite(value):
            raise NaNLossError(
                f"loss {name} is {value} at step {self.step_idx}; stopping. The last good checkpoint "
                f"is kept in {Path(self.cfg.out) / 'checkpoints'}"
            )
        (loss * gain).backward()
        all_reduce_grads(net, self.dist.world_size)
        opt.step()
        net.requires_grad_(False)
        if isinstance(out, tuple) and self.ada is not None:
            self.ada.accumulate(out[1])
        return value

    def step(self, inp: L.StepInputs | None = None) -> dict:
        """One global step (Gmain, [Greg], Dmain, [Dreg], EMA). Returns the losses (means over ranks)."""
        cfg, lc = self.cfg, self.lcfg
        step = self.step_idx
        inp = inp if inp is not None else self.step_inputs(step)
        nrr = L.neural_rendering_resolution_at(self.cur_nimg, lc, self.nrr_default)
        sigma = L.blur_sigma_at(self.cur_nimg, lc)
        G, D, aug = self.G, self.D, self.augment
        ctx = L.StepContext(inp, lc, nrr, L.DiscriminatorView(sigma, aug))
        stats: dict[str, float] = {}

        G.requires_grad_(False)  # each phase unfreezes its own network while it runs
        D.requires_grad_(False)
        stats["loss_G"] = self._phase("G", G, self.opt_G, lambda: L.generator_loss(G, D, ctx))
        if lc.density_reg > 0 and lc.density_reg_interval and step % lc.density_reg_interval == 0:
            k = lc.density_reg_interval
            stats["loss_density"] = self._phase("density", G, self.opt_G, lambda: L.density_reg_loss(G, ctx), k)
        stats["loss_D"] = self._phase("D", D, self.opt_D, lambda: L.discriminator_loss(G, D, ctx))
        if lc.r1_gamma > 0 and lc.r1_interval and step % lc.r1_interval == 0:
            k = lc.r1_interval
            stats["loss_r1"] = self._phase("R1", D, self.opt_D, lambda: L.r1_loss(D, ctx), k)
        average_buffers(G, self.dist.world_size)  # w_avg was tracked on each rank's share

        self.cur_nimg += cfg.batch
        beta = L.ema_beta(cfg.batch, self.cur_nimg, _ema_kimg(cfg), cfg.ema_rampup)
        L.update_ema(self.G_ema, self.G, beta)
        self.G_ema.neural_rendering_resolution = nrr
        if self.ada is not None and aug is not None:
            self.ada.update(aug, cfg.batch, step)
        self.step_idx += 1
        stats.update(nrr=nrr, blur_sigma=sigma)
        if aug is not None:
            stats["augment_p"] = aug.p
        return stats

    # --------------------------------------------------------------------------------- checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        t: dict[str, torch.Tensor] = {}
        for prefix, m in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            for k, v in m.state_dict().items():
                t[f"{prefix}.{k}"] = v
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            for idx, st in opt.state_dict()["state"].items():
                for k, v in st.items():
                    t[f"{prefix}.{idx}.{k}"] = torch.as_tensor(v)
        return t

    def _rng_states(self) -> tuple[list[torch.Tensor], list]:
        """(torch CPU RNG state per rank, [numpy, python] state per rank) gathered on every rank."""
        torch_state = torch.get_rng_state()
        host = {"numpy": _np_state(), "python": _py_state()}
        if self.dist.world_size == 1:
            return [torch_state], [host]
        import torch.distributed as dist

        states = [torch.empty_like(torch_state) for _ in range(self.dist.world_size)]
        dist.all_gather_object(states, torch_state)
        hosts: list = [None] * self.dist.world_size
        dist.all_gather_object(hosts, host)
        return states, hosts

    def save(self) -> Path | None:
        torch_states, hosts = self._rng_states()  # collective: every rank calls it
        if not self.dist.is_main:
            barrier(self.dist.world_size)
            return None
        tensors = self.state_tensors()
        for r, st in enumerate(torch_states):
            tensors[f"rng.torch.{r}"] = st
        meta = {
            "format": CKPT_FORMAT,
            "version": 1,
            "step": self.step_idx,
            "cur_nimg": self.cur_nimg,
            "data_position": self.step_idx * self.cfg.batch,
            "world_size": self.dist.world_size,
            "config": self.cfg.to_dict(),
            "G_init_kwargs": self.G.init_kwargs,
            "D_init_kwargs": self.D.init_kwargs,
            "neural_rendering_resolution": int(self.G_ema.neural_rendering_resolution),
            "opt_G_param_groups": _param_groups(self.opt_G),
            "opt_D_param_groups": _param_groups(self.opt_D),
            "rng_host": hosts,
            "augment_p": self.augment.p if self.augment is not None else None,
            "ada_signs": list(self.ada.signs) if self.ada is not None else None,
        }
        folder = save_step(self.cfg.out, self.step_idx, tensors, meta, keep=self.cfg.keep)
        barrier(self.dist.world_size)
        return folder

    def load(self, loaded: Loaded) -> None:
        tensors, meta, folder = loaded.tensors, loaded.meta, loaded.folder
        if meta.get("format") != CKPT_FORMAT:
            raise CheckpointError(f"{folder} is not a tristudio EG3D training checkpoint")
        old = meta["config"]
        for key in ("preset", "batch", "seed"):
            if old.get(key) != getattr(self.cfg, key):
                raise TrainingError(
                    f"--resume: the run in {self.cfg.out} was started with {key}={old.get(key)!r}, "
                    f"not {getattr(self.cfg, key)!r}; resume with the same value or use a new --out"
                )
        dev = self.dist.device
        for prefix, m in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            sd = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            m.load_state_dict(sd, strict=True)
        for prefix, opt, groups in (
            ("opt_G", self.opt_G, meta["opt_G_param_groups"]),
            ("opt_D", self.opt_D, meta["opt_D_param_groups"]),
        ):
            state: dict[int, dict] = {}
            for k, v in tensors.items():
                if k.startswith(prefix + "."):
                    _, idx, name = k.split(".", 2)
                    state.setdefault(int(idx), {})[name] = v.to(dev) if name != "step" else v
            sd = opt.state_dict()
            for g_new, g_old in zip(sd["param_groups"], groups, strict=True):
                g_new.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in g_old.items() if k != "params"})
            sd["state"] = state
            opt.load_state_dict(sd)
        self.step_idx = int(meta["step"])
        self.cur_nimg = int(meta["cur_nimg"])
        nrr = int(meta["neural_rendering_resolution"])
        self.G.neural_rendering_resolution = self.G_ema.neural_rendering_resolution = nrr
        if self.augment is not None and meta.get("augment_p") is not None:
            self.augment.p = float(meta["augment_p"])
        if self.ada is not None and meta.get("ada_signs") is not None:
            self.ada.signs = list(meta["ada_signs"])
        r = self.dist.rank
        if int(meta.get("world_size", 1)) == self.dist.world_size:
            torch.set_rng_state(tensors[f"rng.torch.{r}"])
            _set_np_state(meta["rng_host"][r]["numpy"])
            _set_py_state(meta["rng_host"][r]["python"])
        else:
            self.log(
                f"resume: the checkpoint was written by {meta.get('world_size')} processes, this run has "
                f"{self.dist.world_size}; random streams are re-seeded (the run is no longer bit-reproducible)"
            )
            self._reseed_globals(_mix(self.cfg.seed, self.step_idx))

    def export_model(self) -> Path | None:
        """G_ema as a tristudio model folder RUN_DIR/model (what `--model` and the viewer load)."""
        if not self.dist.is_main:
            return None
        source = {
            "trained_by": "tristudio train eg3d",
            "step": self.step_idx,
            "kimg": self.cur_nimg / 1000,
            "data": str(self.cfg.data),
            "preset": self.cfg.preset,
        }
        return save_generator(self.G_ema, Path(self.cfg.out) / "model", source, init_kwargs=self.G.init_kwargs)


def _param_groups(opt: torch.optim.Optimizer) -> list[dict]:
    out = []
    for g in opt.state_dict()["param_groups"]:
        out.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return out


def _np_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_np_state(s: list) -> None:
    np.random.set_state((s[0], np.asarray(s[1], dtype=np.uint32), s[2], s[3], s[4]))


def _py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_py_state(s: list) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The run's committed checkpoint folder (named by checkpoints/latest), or None."""
    step = latest_step(out)
    return None if step is None else step_folder(out, step)


# ----------------------------------------------------------------------------------------------- pictures


@torch.no_grad()
def sample_grid(G, seeds: list[int], yaws: list[float], pitch: float = 0.0) -> np.ndarray:
    """G's images for fixed seeds (rows) and yaw angles (columns), conditioned on the frontal pose.

    Deterministic (const noise, mid-interval ray samples); consumes no global RNG. Returns uint8 (H, W, 3).
    """
    from ..cameras import FFHQ_FOV_DEG, Cameras

    rk = G.rendering_kwargs
    pivot = rk.get("avg_camera_pivot", [0, 0, 0.2])
    radius = rk.get("avg_camera_radius", 2.7)
    was_training = G.training
    G.eval()
    dev = next(G.parameters()).device
    z = torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds]).to(dev)
    c_front = Cameras.orbit(0.0, 0.0, radius=radius, fov_deg=FFHQ_FOV_DEG, pivot=pivot).label().to(dev)
    ws = G.mapping(z, c_front.expand(len(seeds), -1))
    rows = []
    for i in range(len(seeds)):
        cams = (
            Cameras.orbit(
                torch.tensor(yaws), torch.full((len(yaws),), pitch), radius=radius, fov_deg=FFHQ_FOV_DEG, pivot=pivot
            )
            .label()
            .to(dev)
        )
        out = G.synthesis(ws[i : i + 1].expand(len(yaws), -1, -1), cams, noise_mode="const", deterministic=True)
        img = out["image"]  # (cols, 3, S, S) in ~[-1, 1]
        rows.append(torch.cat(list(img), dim=2))  # (3, S, cols * S)
    G.train(was_training)
    grid = torch.cat(rows, dim=1)  # (3, rows * S, cols * S)
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


# ----------------------------------------------------------------------------------------------- the loop


def train(
    cfg: TrainConfig, resume: bool = False, dataset=None, console=None, dist_info: DistInfo | None = None
) -> dict:
    """Run (or continue) training; returns a summary {steps, kimg, images_per_s, run_dir, checkpoint}.

    Raises TrainingError for a bad dataset / incompatible resume and NaNLossError (a TrainingError) on a NaN loss.
    """
    from rich.console import Console

    console = console or Console(stderr=False, highlight=False)
    di = dist_info or init_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))

    def say(msg: str) -> None:
        if di.is_main:
            console.print(escape(msg))  # paths and dataset names may hold "[...]"

    if not cfg.out:
        raise TrainingError("train: --out RUN_DIR is required")
    out = Path(cfg.out)
    if dataset is None:
        dataset = open_training_set(cfg.data)
    total = cfg.total_steps
    run = TrainingRun(out, checkpoint_every=cfg.snap, total_steps=total, is_main=di.is_main, warn=say)
    run.check_start(resume)
    barrier(di.world_size)  # every process has looked at the folder before the main one writes into it
    run.write_config(cfg.to_dict())

    trainer = Trainer(cfg, dataset, di, log=say)
    last_ckpt = None
    if run.resume(trainer.load):  # a run with no checkpoint yet only has its log cut back to step 0
        last_ckpt = step_folder(out, trainer.step_idx)
        say(f"resumed from {last_ckpt} (step {trainer.step_idx}, {trainer.cur_nimg / 1000:.3f} kimg)")
    records = run.records()  # every step's record (the plot's), the log's lines before this session
    say(
        f"training {cfg.preset} on {cfg.data} ({len(dataset)} images, {dataset.resolution} px) for {total} steps of "
        f"{cfg.batch} images ({di.world_size} process{'es' if di.world_size > 1 else ''}, {di.device}) -> {out}"
    )

    seeds = list(range(cfg.grid_seeds))
    yaws = np.linspace(-0.6, 0.6, cfg.grid_yaws).tolist()
    t_start = time.perf_counter()
    imgs_done = 0
    ips = 0.0
    from rich.progress import TextColumn

    from ..io.progress import step_progress

    progress = step_progress(console, TextColumn("{task.fields[status]}"), disable=not di.is_main)
    with progress:
        task = progress.add_task("eg3d", total=total, completed=trainer.step_idx, first=trainer.step_idx, status="")
        while trainer.step_idx < total:
            t0 = time.perf_counter()
            stats = trainer.step()
            dt = time.perf_counter() - t0
            imgs_done += cfg.batch
            ips = cfg.batch / dt
            step = trainer.step_idx
            rec = {
                "step": step,
                "kimg": trainer.cur_nimg / 1000,
                **stats,
                "images_per_s": ips,
                "sec_per_step": dt,
                "time": time.time(),
            }
            records.append(rec)
            if step % cfg.log_every == 0 or step == total:
                run.log(rec)
            status = (
                " ".join(
                    f"{k[5:] if k.startswith('loss_') else k}={v:.3f}"
                    for k, v in stats.items()
                    if k.startswith("loss_")
                )
                + f" {imgs_done / (time.perf_counter() - t_start):.1f} img/s"  # since this run (re)started
            )
            progress.update(task, completed=step, status=status)
            if cfg.sample_every and (step % cfg.sample_every == 0) and di.is_main:
                save_png(out / "samples" / f"step-{step:08d}.png", sample_grid(trainer.G_ema, seeds, yaws))
            if run.checkpoint_due(step):  # every cfg.snap steps and at the end; collective under DDP
                last_ckpt = trainer.save()
                trainer.export_model()
                run.plot(records)
    if di.is_main:
        save_png(out / "samples" / f"step-{trainer.step_idx:08d}.png", sample_grid(trainer.G_ema, seeds, yaws))
        run.plot(records)
    elapsed = time.perf_counter() - t_start
    summary = {
        "steps": trainer.step_idx,
        "kimg": trainer.cur_nimg / 1000,
        "images_per_s": imgs_done / elapsed if elapsed > 0 else ips,
        "run_dir": str(out),
        "checkpoint": str(last_ckpt) if last_ckpt else None,
    }
    say(
        f"done: step {summary['steps']}, {summary['kimg']:.3f} kimg, {summary['images_per_s']:.2f} images/s; "
        f"model in {out / 'model'}"
    )
    return summary
