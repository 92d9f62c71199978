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
    # Model
    model_path: str = ""
    model_name: str = ""
    model_error: str = ""
    model_loading: bool = False
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
    # Status
    errors: list[str] = field(default_factory=list)

    def latent_spec(self, view_label: tuple[float, ...] | None = None) -> LatentSpec:
        return LatentSpec(
            seed_a=int(self.seed_a), seed_b=int(self.seed_b), t=round(float(self.t), 6), mode=self.interp_mode,
            psi=round(float(self.psi), 6), cutoff=int(self.cutoff) if self.cutoff > 0 else None, cond=self.cond,
            cond_label=view_label if self.cond == "view" else None,
        )

    def capture_path(self, stem: str, ext: str) -> Path:
        """The next free capture file: <capture_dir>/<stem>_0001.<ext>, _0002, ... (numbers increase per stem)."""
        folder = Path(self.capture_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        used = [int(p.stem.rsplit("_", 1)[1]) for p in folder.glob(f"{stem}_*.*")
                if p.stem.rsplit("_", 1)[1].isdigit()]
        return folder / f"{stem}_{max(used, default=0) + 1:04d}.{ext.lstrip('.')}"
