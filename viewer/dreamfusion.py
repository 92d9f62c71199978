"""The viewer's handle on a DreamFusion optimisation: a session (settings -> prior -> DreamFusion object -> training
worker), a renderer the render worker can call (same signature as GeneratorSession.render), and the capture jobs for the
object (mesh export through core.dreamfusion.export / core/mesh.py). Torch only: no GL and no imgui here.

Everything goes through core.dreamfusion's public API: DreamFusion(cfg, prior), .step(), .render(cameras, ...),
.lock (held during a step; the viewer takes it to render from its own thread), .field.density / .field(x).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tristudio.core.dreamfusion.guidance import GUIDANCES as _GUIDANCE_CLASSES
from tristudio.core.dreamfusion.guidance import default_guidance_scale
from tristudio.core.dreamfusion.runs import check_run, is_dreamfusion_run, recorded_prior
from tristudio.core.io.assets import shipped_prior_path

from .generator_session import Frame
from .images import depth_image, rgba_u8
from .orbit import OrbitCamera
from .workers import Job, TrainingWorker

__all__ = [
    "GUIDANCES",
    "GUIDANCE_LABELS",
    "default_scale",
    "SHOW_MODES",
    "NO_PRIOR_MESSAGE",
    "default_prior_path",
    "load_prior_cached",
    "DFSpec",
    "DreamFusionView",
    "DreamFusionSession",
    "is_dreamfusion_run",
    "prior_folder",
    "run_settings",
    "dreamfusion_camera",
    "export_mesh",
]

GUIDANCES = tuple(_GUIDANCE_CLASSES)  # names, labels and default scales: core.dreamfusion.guidance.GUIDANCES
GUIDANCE_LABELS = {name: cls.label for name, cls in _GUIDANCE_CLASSES.items()}
SHOW_MODES = ("shaded", "albedo", "textureless", "depth", "normals", "opacity")
NO_PRIOR_MESSAGE = "no shipped prior yet: choose a prior folder (a diffusers folder with model_index.json)"


def default_scale(guidance: str, prior_path: str = "") -> float:
    """The guidance method's default scale for the prior folder (its profile may override the method's default)."""
    return float(default_guidance_scale(guidance, prior_path.strip() or None))


def default_prior_path() -> str:
    """The shipped prior's folder when it is there, else "" (the panel then asks for a folder)."""
    p = shipped_prior_path()
    return str(p) if (p / "model_index.json").is_file() else ""


_prior_cache: dict = {}
_prior_lock = threading.Lock()


def load_prior_cached(path: str, device: str | None = None):
    """load_prior(path) on `device` (None: CUDA when present, else the CPU), kept for the next session (a Reset +
    Start does not load it again)."""
    from tristudio.core.io.progress import quiet_loader_bars
    from tristudio.core.priors.load import load_prior

    quiet_loader_bars()  # no 'Loading weights' bars on the terminal the viewer was started from
    folder = Path(str(path).strip()).expanduser()
    if not str(path).strip():
        raise ValueError(NO_PRIOR_MESSAGE)
    key = (str(folder.resolve()), device)
    with _prior_lock:
        if key not in _prior_cache:
            _prior_cache.clear()  # one prior in memory at a time
            _prior_cache[key] = load_prior(folder, device=device or "auto")
        return _prior_cache[key]


def dreamfusion_camera() -> OrbitCamera:
    """The orbit camera the viewer starts with on a DreamFusion object: looking at the origin from the middle of the
    training cameras' ranges (core/dreamfusion/views.py ViewRanges: radius 2.3-2.7, field of view 27-33 deg),
    slightly from above."""
    import math

    from tristudio.core.dreamfusion.views import ViewRanges

    v = ViewRanges()
    return OrbitCamera(
        yaw=math.radians(30.0),
        pitch=math.radians(15.0),
        radius=sum(v.radius) / 2,
        fov_deg=sum(v.fov_deg) / 2,
        pivot=(0.0, 0.0, 0.0),
        # outside the object's box [-0.5, 0.5]^3 (its half-diagonal) to twice the farthest training camera; the
        # object renders at any distance (its rays are cut to the box), so this only keeps it in view
        radius_range=(math.sqrt(3) / 2, 2 * max(v.radius)),
    )


@dataclass(frozen=True)
class DFSpec:
    """What decides a DreamFusion frame besides the camera: the object, its step, and what to show."""

    ident: int = 0  # the session
    step: int = 0  # the optimiser's step count when requested
    show: str = "shaded"  # see SHOW_MODES


_SHADING = {"shaded": "lambertian", "albedo": "albedo", "textureless": "textureless"}


class DreamFusionView:
    """Renders a session's object from an orbit camera (called by the RenderWorker or a capture job)."""

    renders_any_size = True  # captures render at the requested size (no fixed super-resolution output)

    def __init__(self, session: "DreamFusionSession"):
        self.session = session

    def render(self, spec: DFSpec, camera: OrbitCamera, settings=None, resolution: int | None = None) -> Frame:
        df = self.session.df
        if df is None:
            raise RuntimeError("no DreamFusion object yet: press Start")
        res = int(resolution or self.session.view_resolution)
        cams = camera.cameras()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # (this thread only) the optimiser's thread keeps its core
        try:
            with df.lock, torch.no_grad():
                t0 = time.perf_counter()  # the render's own time (not the wait for a step to finish)
                step = int(df.step_count)
                out = df.render(
                    cams, res, _SHADING.get(spec.show, "albedo"), background=spec.show in _SHADING, deterministic=True
                )
        finally:
            torch.set_num_threads(threads)
        rgba = _to_rgba(out, spec.show, cams)
        return Frame.rendered(rgba, t0, res, spec.show, camera, spec, source="dreamfusion", extra={"step": step})


def _to_rgba(out: dict, show: str, cams) -> np.ndarray:
    """DreamFusion render dict (batch of one) -> (H, W, 4) uint8."""
    if show in _SHADING:
        return rgba_u8(out["image"][0])
    opacity = out["opacity"][0].clamp(0, 1)  # (1, R, R)
    if show == "opacity":
        return rgba_u8(opacity)
    if show == "normals":  # world normals -> camera axes (x right, y up, z to the viewer), like the EG3D output
        n = out["normal"][0]  # (3, R, R) world
        rot = cams.cam2world[0, :3, :3].to(n)
        n = torch.einsum("ji,jhw->ihw", rot, n) * torch.tensor([1.0, -1.0, -1.0])[:, None, None]
        return rgba_u8(((n + 1) / 2) * opacity)
    depth = out["depth"][0]  # ray distance, (1, R, R)
    return rgba_u8(depth_image(depth, opacity, 0.0))  # background: black


@dataclass
class DreamFusionSettings:
    """What one optimisation is started with: the DreamFusion panel's settings (viewer.state.DreamFusionState)."""

    prompt: str
    guidance: str
    guidance_scale: float
    steps: int
    lr: float
    prior_path: str
    resolution: int = 0  # training render size; 0: the prior's (core.dreamfusion.optimize.resolve_for_prior)
    seed: int = 0
    extra: dict = dataclasses.field(default_factory=dict)  # more DreamFusionConfig fields (tests: tiny sizes)

    @classmethod
    def from_state(cls, state) -> "DreamFusionSettings":
        """A snapshot of the panel's state (its `scale` is the guidance scale); later edits do not reach it."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "guidance_scale"]
        snapshot = {name: copy.copy(getattr(state, name)) for name in names}
        return cls(guidance_scale=state.scale, **snapshot)

    def __post_init__(self):  # ImGui widgets hand back floats and ints loosely
        self.guidance_scale, self.lr = float(self.guidance_scale), float(self.lr)
        self.steps, self.resolution, self.seed = int(self.steps), int(self.resolution), int(self.seed)

    def differs(self, other: "DreamFusionSettings") -> bool:
        """A setting that decides the object differs: any but `steps` (the run's length, which Start applies) and
        `extra` (floats beyond ImGui's float32: a run's lr 0.05 reads back 0.0500000007)."""

        def same(a, b) -> bool:
            return math.isclose(a, b, rel_tol=1e-6) if isinstance(a, float) and isinstance(b, float) else a == b

        names = [f.name for f in dataclasses.fields(self) if f.name not in ("steps", "extra")]
        return any(not same(getattr(self, name), getattr(other, name)) for name in names)

    def config(self):
        from tristudio.core.dreamfusion.optimize import DreamFusionConfig

        names = {f.name for f in dataclasses.fields(DreamFusionConfig)}
        extra = {k: v for k, v in self.extra.items() if k in names}
        shared = {k: getattr(self, k) for k in ("prompt", "guidance", "guidance_scale", "steps", "lr", "seed")}
        return DreamFusionConfig.from_dict({**extra, **shared, "resolution": self.resolution or None}, saved=False)


def prior_folder(path: str | Path) -> Path | None:
    """The diffusers folder `path` stands for (itself, or a `train prior` run's export), else None."""
    from tristudio.core.io.training_run import run_export

    folder = Path(str(path).strip()).expanduser()
    try:
        folder = run_export(folder, "prior")
    except FileNotFoundError:
        return None
    return folder if (folder / "model_index.json").is_file() else None


def run_settings(folder: str | Path) -> DreamFusionSettings:
    """The settings a DreamFusion run was made with (its config.json), and its prior: the one its command.json names,
    else the shipped one. Raises ValueError for a folder that is not a DreamFusion run with a checkpoint."""
    from tristudio.core.io.training_run import TrainingRun

    from .state import _config_default

    folder = check_run(folder)
    config = TrainingRun(folder, warn=None).read_config()
    prior = recorded_prior(folder) or default_prior_path()  # (none recorded: the shipped one)
    panel = {"prompt", "guidance", "guidance_scale", "steps", "lr", "resolution", "seed"}
    return DreamFusionSettings(
        extra={k: v for k, v in config.items() if k not in panel},  # the rest of the run's config (Reset + Start)
        prompt=config["prompt"],
        guidance=config["guidance"],
        guidance_scale=config.get("guidance_scale") or default_scale(config["guidance"], str(prior)),
        steps=config.get("steps", _config_default("steps")),
        lr=config.get("lr", _config_default("lr")),
        prior_path=str(prior),
        resolution=config.get("resolution") or 0,
        seed=config.get("seed", 0),
    )


_idents = itertools.count(1)


def training_threads() -> int:
    """torch threads for the optimiser: the idle cores but one, which the GUI and the view's renders keep
    (core.threads.auto_threads). On a 2-core machine that is 1; two OpenMP threads there beside the GUI thread made a
    tiny step 30x slower under load (8.2 s vs 0.26 s measured with ~8 other busy processes)."""
    from tristudio.core.threads import auto_threads

    return auto_threads(reserve=1)


class DreamFusionSession:
    """One optimisation: the worker thread loads the prior and builds the object (setup), then steps it.

    `df` is None until setup has finished; afterwards the object stays (for viewing and captures) after Stop, and a
    later start() continues it from its step count. `make` builds the object (tests swap it)."""

    def __init__(
        self,
        settings: DreamFusionSettings,
        view_resolution: int = 96,
        make=None,
        run_dir: str | Path | None = None,
        note=None,
    ):
        self.settings = settings
        self.note = note or (lambda line: None)  # a line for the panel (set from the training thread)
        self.ident = next(_idents)
        self.view_resolution = int(view_resolution)
        self.df = None
        self.prior_name = ""
        self.run_dir = Path(run_dir) if run_dir is not None else None  # an opened `tristudio dreamfusion` run
        self._make = make or (self._open if self.run_dir is not None else self._build)
        self.view = DreamFusionView(self)
        self.worker = TrainingWorker(
            self._step,
            total=settings.steps,
            count=self._count,
            setup=self._setup,
            name="tristudio-dreamfusion",
            threads=training_threads(),
        )

    def _build(self, settings: DreamFusionSettings):
        from tristudio.core.dreamfusion.optimize import DreamFusion

        prior = load_prior_cached(settings.prior_path)
        self.prior_name = str(settings.prior_path)
        return DreamFusion(settings.config(), prior)

    def _open(self, settings: DreamFusionSettings):
        """The run's newest checkpoint (its own config) with the run's prior; its log becomes the loss plot's
        history. Continuing it trains in memory: the run folder is never written from the viewer."""
        from tristudio.core.dreamfusion.optimize import DreamFusion
        from tristudio.core.io.runlock import live_holder
        from tristudio.core.io.training_run import TrainingRun

        prior = load_prior_cached(settings.prior_path)
        self.prior_name = str(settings.prior_path)
        notes: list[str] = []  # e.g. "warning: <newest> is corrupt; falling back to step-..."
        df = DreamFusion.load(self.run_dir, prior, warn=notes.append, read_only=True)  # the folder stays as it is
        pid = live_holder(self.run_dir)
        if pid is not None:
            notes.append(
                f"{self.run_dir} is being trained by pid {pid}: this is its checkpoint at step {df.step_count} "
                "(Load the folder again for a newer one)"
            )
        self.note(" ".join(notes))
        run = TrainingRun(self.run_dir, log_step_is_index=True, warn=None)
        records = [r for r in run.records(upto_step=df.step_count) if "loss" in r and "step" in r]
        with self.worker.lock:
            self.worker.history[:0] = records
        return df

    def _setup(self) -> None:
        if self.df is None:
            self.df = self._make(self.settings)

    def _step(self) -> dict:
        return self.df.step()

    def _count(self) -> int:
        return int(self.df.step_count) if self.df is not None else 0

    @property
    def step_count(self) -> int:
        return self._count()

    def start(self, paused: bool = False) -> None:
        self.worker.start(paused)

    def set_steps(self, steps: int) -> None:
        """A new total for the run (as `tristudio dreamfusion --resume --steps N`): the loop's end and the config's."""
        self.settings.steps = self.worker.total = int(steps)
        if self.df is not None:
            self.df.cfg.steps = int(steps)

    def stop(self, timeout: float | None = 30.0) -> bool:
        return self.worker.stop(timeout)


def export_mesh(job: Job, session: DreamFusionSession, resolution: int, level: float | None, path: Path) -> str:
    """core.dreamfusion.export.export_mesh (core/mesh.py: the one marching cubes, albedo vertex colours, .ply / .obj /
    .glb by the suffix) under the object's lock, so the mesh is of one step's weights. level None: the engine's
    automatic level (mesh_level)."""
    from tristudio.core.dreamfusion.export import export_mesh as export_df_mesh

    df = session.df
    if df is None:
        raise RuntimeError("no DreamFusion object yet: press Start")
    from tristudio.core.mesh import save_mesh

    grid = lambda f: job.step(0.9 * f, f"marching cubes on a {resolution}^3 density grid")  # noqa: E731 (Cancel)
    with df.lock:
        mesh = export_df_mesh(df, None, resolution=int(resolution), level=level, progress=grid)
    job.step(0.95, f"saving {path.name}")  # a Cancel pressed during the last grid slices stops here: nothing is written
    save_mesh(mesh, path)
    job.result_path = str(path)
    job.extra = {"vertices": len(mesh.vertices), "faces": len(mesh.faces), "watertight": bool(mesh.is_watertight)}
    return (
        f"saved {path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
        f"{'watertight' if mesh.is_watertight else 'not watertight'}"
    )
