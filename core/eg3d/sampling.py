"""Sampling a trained generator: seeds -> z, the conditioning and view cameras, images, depth, tri-planes, orbits.

Seeds give the same z as EG3D's gen_samples.py (`np.random.RandomState(seed).randn(1, z_dim)`), so seed k shows the
same identity as in the official tools for the same weights. Angles are in radians: yaw = 0, pitch = 0 is the frontal
view; cameras orbit the world origin and look at `avg_camera_pivot` at `avg_camera_radius` (EG3D's LookAtPoseSampler).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..cameras import FFHQ_FOV_DEG, Cameras

__all__ = [
    "MAX_SEEDS",
    "SEED_MAX",
    "parse_seeds",
    "z_from_seeds",
    "view_label",
    "conditioning_label",
    "generate",
    "raw_views",
    "orbit_angles",
    "orbit_frames",
]


SEED_MAX = 2**32 - 1  # numpy's RandomState, which draws EG3D's z, takes seeds 0 .. 2**32 - 1
MAX_SEEDS = 100_000  # seeds in one list (generate writes a PNG per seed and a grid of them all)


def parse_seeds(spec: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]. A seed named twice is kept once, where it first stands (its files
    are named by the seed). Seeds lie in 0 .. SEED_MAX (ValueError otherwise, before any z is drawn)."""
    seeds: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            a, b = part.split("-", 1) if "-" in part[1:] and not part.startswith("-") else (part, part)
            lo, hi = int(a), int(b)
        except ValueError:
            lo, hi = 0, -1
        if hi < lo:
            raise ValueError(f"bad seed list {spec!r}: use e.g. '0-15' or '1,5,9'")
        if lo < 0 or hi > SEED_MAX:
            raise ValueError(f"seed {lo if lo < 0 else hi} is outside 0..{SEED_MAX} (numpy's RandomState seeds)")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:  # (0-4294967295 would build the list until memory ran out)
            raise ValueError(f"seed list {spec!r} names more than {MAX_SEEDS} seeds: split it into several runs")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ValueError(f"bad seed list {spec!r}: no seeds")
    return list(dict.fromkeys(seeds))


def z_from_seeds(seeds: list[int], z_dim: int) -> Float[Tensor, "n z"]:
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


def _pivot_radius(G) -> tuple[list[float], float]:
    rk = G.rendering_kwargs
    return list(rk.get("avg_camera_pivot", [0, 0, 0.2])), float(rk.get("avg_camera_radius", 2.7))


def view_label(
    G, yaw: float | Tensor, pitch: float | Tensor, fov_deg: float = FFHQ_FOV_DEG, radius: float | None = None
) -> Float[Tensor, "n 25"]:
    """EG3D labels of cameras at (yaw, pitch) around the world origin, looking at the generator's pivot."""
    pivot, r = _pivot_radius(G)
    return Cameras.orbit(
        yaw, pitch, r if radius is None else radius, fov_deg=fov_deg, pivot=pivot, center=(0.0, 0.0, 0.0)
    ).label()


def conditioning_label(G, n: int = 1, fov_deg: float = FFHQ_FOV_DEG) -> Float[Tensor, "n 25"]:
    """The frontal camera EG3D conditions the mapping network on when sampling (gen_samples' conditioning_params)."""
    return view_label(G, 0.0, 0.0, fov_deg).expand(n, 25).clone()


@torch.no_grad()
def generate(
    G,
    seeds: list[int],
    truncation_psi: float = 0.7,
    truncation_cutoff: int | None = 14,
    yaw: float = 0.0,
    pitch: float = 0.0,
    fov_deg: float = FFHQ_FOV_DEG,
    neural_rendering_resolution: int | None = None,
    deterministic: bool = True,
    device: str | torch.device = "cpu",
) -> dict[str, Tensor]:
    """Images for seeds: {image (N,3,S,S), image_raw (N,3,R,R), image_depth (N,1,R,R), planes, ws} on CPU."""
    device = torch.device(device)
    z = z_from_seeds(seeds, G.z_dim).to(device)
    c_cond = conditioning_label(G, len(seeds), fov_deg).to(device)
    ws = G.mapping(z, c_cond, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    planes = G.synthesis_planes(ws)
    c_view = view_label(G, yaw, pitch, fov_deg).expand(len(seeds), 25).to(device)
    out = G.render_planes(
        planes,
        ws,
        Cameras.from_label(c_view),
        neural_rendering_resolution=neural_rendering_resolution,
        deterministic=deterministic,
    )
    result = {k: out[k].cpu() for k in ("image", "image_raw", "image_depth")}
    result["planes"], result["ws"] = planes.cpu(), ws.cpu()
    return result


@torch.no_grad()
def raw_views(
    G, planes: Float[Tensor, "b 3 c p p"], cameras: Cameras, resolution: int | None = None
) -> dict[str, Tensor]:
    """The neural renderer's own output of `planes` seen from `cameras` (N views; planes of batch 1 are shared by all),
    deterministic (bin centres, fixed importance quantiles) and without super-resolution: image_raw, image_depth,
    image_opacity, each (N, C, R, R). What the geometry metrics (consistency, pose, floaters) measure."""
    if planes.shape[0] == 1 and len(cameras) > 1:
        planes = planes.expand(len(cameras), -1, -1, -1, -1)
    return G.render_planes(
        planes, None, cameras, neural_rendering_resolution=resolution, deterministic=True, run_superres=False
    )


def orbit_angles(n_frames: int, yaw_range: float = 0.35, pitch_range: float = 0.25) -> list[tuple[float, float]]:
    """One loop of (yaw, pitch): yaw = yaw_range sin(2 pi t), pitch = pitch_range cos(2 pi t) (EG3D's video path)."""
    return [
        (yaw_range * math.sin(2 * math.pi * i / n_frames), pitch_range * math.cos(2 * math.pi * i / n_frames))
        for i in range(n_frames)
    ]


@torch.no_grad()
def orbit_frames(
    G,
    planes: Tensor,
    ws: Tensor,
    n_frames: int,
    fov_deg: float = FFHQ_FOV_DEG,
    yaw_range: float = 0.35,
    pitch_range: float = 0.25,
    neural_rendering_resolution: int | None = None,
    deterministic: bool = True,
) -> Iterator[Float[Tensor, "n 3 s s"]]:
    """Final images of cached planes along one orbit loop, a frame at a time."""
    n = planes.shape[0]
    for yaw, pitch in orbit_angles(n_frames, yaw_range, pitch_range):
        c = view_label(G, yaw, pitch, fov_deg).expand(n, 25).to(planes.device)
        yield G.render_planes(
            planes,
            ws,
            Cameras.from_label(c),
            neural_rendering_resolution=neural_rendering_resolution,
            deterministic=deterministic,
        )["image"]
