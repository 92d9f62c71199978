"""ViewerState: everything the panels edit and the app reads. Plain data, no GL and no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .latent import LatentSpec
from .orbit import OrbitCamera

__all__ = ["ViewerState", "Message"]


@dataclass
class Message:
    text: str
    error: bool = False


@dataclass
class ViewerState:
    # Scene source: the EG3D generator or the DreamFusion object (each keeps its own orbit camera)
    scene: str = "eg3d"  # eg3d | dreamfusion
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
    # Camera
    camera: OrbitCamera = field(default_factory=OrbitCamera)
    # Render
    output: str = "final"
    resolution: int = 0  # 0 = model default (set when a model is loaded)
    samples: int = 0
    background: str = "model"
    quality: str = "interactive"  # interactive | full
    fast_path: str = "grid"  # grid (GL ray-march of a baked grid) | torch (lower resolution torch)
    grid_resolution: int = 96
    target_ms: float = 70.0  # interactive frame-time target
    rest_ms: float = 120.0  # camera still this long -> full-quality render
    # Capture
    capture_dir: str = "captures"
    save_resolution: int = 256
    video_frames: int = 60
    video_fps: int = 30
    video_resolution: int = 128
    mesh_resolution: int = 96
    mesh_level: float = 10.0
    mesh_format: str = "ply"
    capture_message: Message | None = None
    last_capture: str = ""
    # DreamFusion
    df_prompt: str = "a red cube"
    df_guidance: str = "sds"  # sds | csd | vsd
    df_scale: float | None = None  # guidance scale; None: the method's default for the prior (set by the app); the
    #                                panel resets it on a method change
    df_steps: int = 2000
    df_lr: float = 1e-2
    df_prior_path: str = ""  # "" = the shipped prior when present (set by the app)
    df_resolution: int = 0  # training render size; 0: the prior's own (32 px for the shipped prior, <= 64)
    df_seed: int = 0
    df_show: str = "shaded"  # shaded | albedo | textureless | depth | normals | opacity
    df_view_resolution: int = 96  # viewport render size at rest
    df_refresh_s: float = 0.5  # while training: re-render the view for new weights at most this often
    df_fps_cap: float = 12.0  # GUI frame-rate cap while training (the optimiser gets the CPU)
    df_extra: dict = field(default_factory=dict)  # more DreamFusionConfig fields (tests, benchmarks: tiny sizes)
    df_mesh_level: float = 0.0  # density sigma of the exported surface; 0 = automatic (core.dreamfusion.export)
    df_note: str = ""  # shown in the DreamFusion panel (e.g. which prior a screenshot used)
    # Status
    errors: list[str] = field(default_factory=list)
    # The camera of the scene not on screen (swapped in by set_scene)
    other_camera: OrbitCamera | None = None

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

    def set_scene(self, scene: str, df_camera_factory=None) -> None:
        """Switch the viewport between the EG3D generator and the DreamFusion object; each keeps its own camera."""
        if scene not in ("eg3d", "dreamfusion"):
            raise ValueError(f"unknown scene {scene!r}")
        if scene == self.scene:
            return
        other = self.other_camera
        if other is None:
            other = df_camera_factory() if (scene == "dreamfusion" and df_camera_factory) else OrbitCamera()
        self.other_camera, self.camera = self.camera, other
        self.scene = scene

    def capture_path(self, stem: str, ext: str) -> Path:
        """The next free capture file: <capture_dir>/<stem>_0001.<ext>, _0002, ... (numbers increase per stem)."""
        folder = Path(self.capture_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        used = [int(p.stem.rsplit("_", 1)[1]) for p in folder.glob(f"{stem}_*.*") if p.stem.rsplit("_", 1)[1].isdigit()]
        return folder / f"{stem}_{max(used, default=0) + 1:04d}.{ext.lstrip('.')}"
