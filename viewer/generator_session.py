"""The viewer's handle on an EG3D generator: latents -> ws -> tri-planes (cached) -> rendered display images.

Thread-safe for one render worker plus one job worker: the caches are guarded by a lock, and every call runs under
torch.no_grad(). No GL and no imgui here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from .images import to_rgba
from .latent import LatentSpec, frontal_label, slerp, z_from_seed
from .orbit import OrbitCamera, ray_interval

__all__ = ["GeneratorSession", "RenderSettings", "Frame"]


@dataclass(frozen=True)
class RenderSettings:
    output: str = "final"  # see images.OUTPUTS
    resolution: int = 0  # neural rendering resolution; 0 = the model's own
    samples: int = 0  # coarse samples per ray (importance samples: as many); 0 = the model's own
    background: str = "model"


@dataclass
class Frame:
    """A rendered image for the screen: (H, W, 4) uint8, rows top to bottom."""

    rgba: np.ndarray
    ms: float = 0.0
    resolution: int = 0  # neural rendering resolution used
    output: str = "final"
    kind: str = "torch"  # torch | gl
    stamp: int = 0
    camera_key: tuple = ()
    latent: LatentSpec | None = None
    full: bool = True  # full quality (not a reduced interactive frame)
    extra: dict = field(default_factory=dict)
    source: str = "eg3d"  # the scene it shows: eg3d | dreamfusion

    @classmethod
    def rendered(cls, rgba: np.ndarray, since: float, resolution: int, output: str, camera, latent, **more) -> "Frame":
        """A full-quality torch frame whose render started at `since` (time.perf_counter())."""
        ms = (time.perf_counter() - since) * 1000
        return cls(
            rgba=rgba, ms=ms, resolution=resolution, output=output, camera_key=camera.key(), latent=latent, **more
        )


class GeneratorSession:
    def __init__(
        self, generator: torch.nn.Module, name: str = "", device: str | torch.device = "cpu", banner: str = ""
    ):
        self.lock = threading.RLock()
        self.device = torch.device(device)
        self._planes: OrderedDict = OrderedDict()
        self._ws: OrderedDict = OrderedDict()
        self.generation = 0
        self.set_generator(generator, name, banner)

    # ------------------------------------------------------------------ model
    def set_generator(self, generator: torch.nn.Module, name: str = "", banner: str = "") -> None:
        with self.lock:
            self.G = generator.eval().requires_grad_(False).to(self.device)
            self.name = name
            self.banner = banner
            self.generation += 1
            self._planes.clear()
            self._ws.clear()

    @property
    def default_resolution(self) -> int:
        return int(self.G.neural_rendering_resolution)

    @property
    def default_samples(self) -> int:
        return int(self.G.rendering_kwargs["depth_resolution"])

    @property
    def white_back(self) -> bool:
        """The model composites over white (rendering_kwargs white_back), e.g. the shipped heads model."""
        return bool(self.G.rendering_kwargs.get("white_back", False))

    @property
    def num_ws(self) -> int:
        return int(self.G.num_ws)

    # ------------------------------------------------------------------ latents and planes
    def cond_label(self, spec: LatentSpec) -> torch.Tensor:
        if spec.cond == "view" and spec.cond_label is not None:
            return torch.tensor(spec.cond_label, dtype=torch.float32)[None]
        return frontal_label(self.G.rendering_kwargs)

    def _mapping(self, z: torch.Tensor, spec: LatentSpec) -> torch.Tensor:
        c = self.cond_label(spec).to(self.device)
        return self.G.mapping(z.to(self.device), c, truncation_psi=spec.psi, truncation_cutoff=spec.cutoff)

    @torch.no_grad()
    def ws(self, spec: LatentSpec) -> torch.Tensor:
        """(1, num_ws, w_dim) for the spec: slerp of the seeds' z then mapping, or lerp of the seeds' ws."""
        key = (self.generation, spec)
        with self.lock:
            if key in self._ws:
                self._ws.move_to_end(key)
                return self._ws[key]
        za, zb = z_from_seed(spec.seed_a, self.G.z_dim), z_from_seed(spec.seed_b, self.G.z_dim)
        if spec.mode == "slerp_z":
            ws = self._mapping(za if spec.t <= 0 else zb if spec.t >= 1 else slerp(za, zb, spec.t), spec)
        elif spec.mode == "lerp_w":
            wa, wb = self._mapping(za, spec), self._mapping(zb, spec)
            ws = wa if spec.t <= 0 else wb if spec.t >= 1 else torch.lerp(wa, wb, float(spec.t))
        else:
            raise ValueError(f"unknown interpolation mode {spec.mode!r}")
        with self.lock:
            self._ws[key] = ws
            while len(self._ws) > 16:
                self._ws.popitem(last=False)
        return ws

    @torch.no_grad()
    def planes(self, spec: LatentSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """(planes (1, 3, C, P, P), ws) for the spec; cached per (model, spec) so camera changes skip synthesis."""
        key = (self.generation, spec)
        with self.lock:
            if key in self._planes:
                self._planes.move_to_end(key)
                return self._planes[key]
        ws = self.ws(spec)
        planes = self.G.synthesis_planes(ws, noise_mode="const")
        with self.lock:
            self._planes[key] = (planes, ws)
            while len(self._planes) > 6:
                self._planes.popitem(last=False)
        return planes, ws

    def has_planes(self, spec: LatentSpec) -> bool:
        with self.lock:
            return (self.generation, spec) in self._planes

    @torch.no_grad()
    def content_centre(self, resolution: int = 32) -> tuple[float, float, float]:
        """World point at the centre of the model's average object (psi = 0, frontal conditioning): the centroid of
        its baked grid's cell opacities 1 - exp(-sigma * cell) over the box. The viewer orbits it, so the object stays
        centred whatever its world's framing. Falls back to rendering_kwargs avg_camera_pivot for an empty field."""
        from tristudio.core.eg3d.bake import bake_grid

        rk = self.G.rendering_kwargs
        fallback = tuple(float(v) for v in rk.get("avg_camera_pivot", (0.0, 0.0, 0.2)))
        box = float(rk.get("box_warp", 1.0))
        planes, _ = self.planes(LatentSpec(psi=0.0))
        grid = bake_grid(planes, self.G.decoder, resolution, box)  # (R, R, R, 4) [z][y][x], A = raw density
        alpha = 1 - torch.exp(-torch.nn.functional.softplus(grid[..., 3].float() - 1) * (box / resolution))
        total = float(alpha.sum())
        if not total > 1e-3:
            return fallback
        c = ((torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution - 0.5) * box
        z, y, x = torch.meshgrid(c, c, c, indexing="ij")
        return tuple(round(float((alpha.cpu() * v).sum()) / total, 4) for v in (x, y, z))

    # ------------------------------------------------------------------ rendering
    def render_overrides(self, settings: RenderSettings, camera: OrbitCamera) -> dict:
        """RenderOptions overrides of the viewer: samples per ray (coarse and fine) and the model's ray interval
        moved with the camera's distance (orbit.ray_interval; the model's own at the trained radius)."""
        n = settings.samples or self.default_samples
        near, far = ray_interval(self.G.rendering_kwargs, camera.radius)
        return {"depth_resolution": n, "depth_resolution_importance": n, "ray_start": near, "ray_end": far}

    @torch.no_grad()
    def render_dict(
        self, spec: LatentSpec, camera: OrbitCamera, settings: RenderSettings, resolution: int | None = None
    ) -> tuple[dict, object]:
        """The generator's own renderer (G.render_planes, deterministic) on the cached planes from `camera`:
        image_raw, image_depth, image_opacity, image_features and (output 'final') image."""
        planes, ws = self.planes(spec)
        res = int(resolution or settings.resolution or self.default_resolution)
        cams = camera.cameras()
        out = self.G.render_planes(
            planes,
            ws,
            cams.to(self.device),
            res,
            deterministic=True,
            run_superres=settings.output == "final",
            options=self.render_overrides(settings, camera),
        )
        return out, cams

    def render(
        self, spec: LatentSpec, camera: OrbitCamera, settings: RenderSettings, resolution: int | None = None
    ) -> Frame:
        t0 = time.perf_counter()
        out, cams = self.render_dict(spec, camera, settings, resolution)
        rgba = to_rgba(out, settings.output, settings.background, cams, self.white_back)
        res = int(resolution or settings.resolution or self.default_resolution)
        return Frame.rendered(rgba, t0, res, settings.output, camera, spec)

    def bake_iter(self, spec: LatentSpec, resolution: int):
        from tristudio.core.eg3d.bake import iter_bake_grid

        planes, _ = self.planes(spec)
        return iter_bake_grid(planes, self.G.decoder, resolution, float(self.G.rendering_kwargs["box_warp"]))
