"""What the panels edit and the scenes read: plain data, no GL and no torch. One dataclass per owner:

- Eg3dState: the EG3D scene (model, latent, render settings, its orbit camera),
- DreamFusionState: the DreamFusion scene (prompt and optimiser settings, what to show, its orbit camera); the step
  count and learning rate start at core's DreamFusionConfig defaults and the guidance scale at the method's default
  for the prior (core.dreamfusion.guidance), so the viewer restates no numbers of the engine,
- CaptureState: the Capture panel (folder, sizes, the last message),
- ViewerState: which scene is on screen, the shared timing settings, and the three above.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .latent import LatentSpec
from .orbit import OrbitCamera

__all__ = ["Message", "Eg3dState", "DreamFusionState", "CaptureState", "ViewerState", "SCENES"]

SCENES = ("eg3d", "dreamfusion")


@dataclass
class Message:
    text: str
    error: bool = False


@dataclass
class Eg3dState:
    # Model
    model_path: str = ""
    model_name: str = ""
    model_error: str = ""
    model_loading: bool = False
    prior_loaded: str = ""  # a diffusers folder opened from the Model panel (now the DreamFusion prior)
    banner: str = ""
    # Latent
    seed_a: int = 0
    seed_b: int = 1
    t: float = 0.0
    interp_mode: str = "slerp_z"
    psi: float = 0.7
    cutoff: int = 0  # 0 = all layers truncated (None to the generator)
    animate: bool = False
    animate_speed: float = 0.25  # t cycles per second
    cond: str = "frontal"
    # Render
    output: str = "final"
    resolution: int = 0  # 0 = model default (set when a model is loaded)
    samples: int = 0
    background: str = "model"
    quality: str = "interactive"  # interactive | full
    fast_path: str = "grid"  # grid (GL ray-march of a baked grid) | torch (lower resolution torch)
    grid_resolution: int = 96
    target_ms: float = 70.0  # interactive frame-time target
    mesh_level: float = 10.0  # raw decoder density of the exported surface, when not mesh_auto
    mesh_auto: bool = True  # the level whose silhouette is the render's (core/eg3d/bake.py silhouette_level)
    # Camera: None = framed from the model when the scene starts (Eg3dScene.frame_camera)
    camera: OrbitCamera | None = None

    def latent_spec(self, view_label: tuple[float, ...] | None = None) -> LatentSpec:
        return LatentSpec(
            seed_a=int(self.seed_a),
            seed_b=int(self.seed_b),
            t=round(float(self.t), 6),
            mode=self.interp_mode,
            psi=round(float(self.psi), 6),
            cutoff=int(self.cutoff) if self.cutoff > 0 else None,
            cond=self.cond,
            cond_label=view_label if self.cond == "view" else None,
        )


def _config_default(name: str):
    """A field default of core's DreamFusionConfig (the CLI's defaults too)."""
    from tristudio.core.dreamfusion.optimize import DreamFusionConfig

    f = {f.name: f for f in dataclasses.fields(DreamFusionConfig)}[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


@dataclass
class DreamFusionState:
    prompt: str = "a red cube"
    guidance: str = "sds"  # sds | csd | vsd
    scale: float | None = None  # guidance scale; None: the method's default for the prior (set by the scene); the
    #                             panel resets it on a method change
    steps: int = field(default_factory=lambda: int(_config_default("steps")))
    lr: float = field(default_factory=lambda: float(_config_default("lr")))
    prior_path: str = ""  # "" = the shipped prior when present (set by the scene)
    resolution: int = 0  # training render size; 0: the prior's own (32 px for the shipped prior, <= 64)
    seed: int = 0
    show: str = "shaded"  # shaded | albedo | textureless | depth | normals | opacity
    view_resolution: int = 96  # viewport render size at rest
    refresh_s: float = 0.5  # while training: re-render the view for new weights at most this often
    fps_cap: float = 12.0  # GUI frame-rate cap while training (the optimiser gets the CPU)
    extra: dict = field(default_factory=dict)  # more DreamFusionConfig fields (tests, benchmarks: tiny sizes)
    mesh_level: float = 0.0  # density sigma of the exported surface; 0 = automatic (core.dreamfusion.export)
    note: str = ""  # shown in the DreamFusion panel (e.g. which prior a screenshot used)
    camera: OrbitCamera | None = None  # None: viewer.dreamfusion.dreamfusion_camera()


@dataclass
class CaptureState:
    capture_dir: str = "captures"
    save_resolution: int = 256
    video_frames: int = 60
    video_fps: int = 30
    video_resolution: int = 128
    mesh_resolution: int = 96
    mesh_format: str = "ply"
    message: Message | None = None
    last_capture: str = ""

    def path(self, stem: str, ext: str) -> Path:
        """The next free capture file: <capture_dir>/<stem>_0001.<ext>, _0002, ... (numbers increase per stem)."""
        folder = Path(self.capture_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        used = [int(p.stem.rsplit("_", 1)[1]) for p in folder.glob(f"{stem}_*.*") if p.stem.rsplit("_", 1)[1].isdigit()]
        return folder / f"{stem}_{max(used, default=0) + 1:04d}.{ext.lstrip('.')}"


@dataclass
class ViewerState:
    scene: str = "eg3d"  # the scene on screen: eg3d | dreamfusion (each keeps its own camera and settings)
    rest_ms: float = 120.0  # camera still this long -> full-quality render
    eg3d: Eg3dState = field(default_factory=Eg3dState)
    dreamfusion: DreamFusionState = field(default_factory=DreamFusionState)
    capture: CaptureState = field(default_factory=CaptureState)
    errors: list[str] = field(default_factory=list)  # the last few errors (status)

    def __post_init__(self):
        if self.scene not in SCENES:
            raise ValueError(f"unknown scene {self.scene!r}; choose one of {SCENES}")

    @property
    def camera(self) -> OrbitCamera:
        """The orbit camera of the scene on screen."""
        return (self.dreamfusion if self.scene == "dreamfusion" else self.eg3d).camera

    def add_error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-5]
