"""The viewer's orbit camera: yaw / pitch / radius around a pivot, with mouse gestures. Pure Python (no GL, no torch
until `cameras()` is called), so its math is unit-tested without a window.

Angles follow core/cameras.py: yaw turns about +y (yaw > 0 moves the camera towards +x), pitch is the elevation
(pitch > 0 looks from above); both in radians. The camera sits at pivot + radius * (cos p sin y, sin p, cos p cos y)
and looks at the pivot (`Cameras.orbit(yaw, pitch, radius, fov_deg, pivot)`).

Gestures ("grab the object"): dragging right turns the object to the right (yaw decreases), dragging down tilts its
top towards the viewer (pitch increases); a drag across the whole viewport turns it by 180 deg whatever the viewport's
size (`orbit(dx, dy, viewport_px)`); right-drag pans the pivot in the camera's image plane so the content follows the
mouse; the wheel scales the radius by 0.9 per notch (wheel up = closer), clamped to `radius_range` (for an EG3D model:
`model_radius_range`, the distances at which the model's ray interval, moved with the camera, still holds its box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "OrbitCamera",
    "PITCH_LIMIT",
    "RADIUS_RANGE",
    "DEFAULT_PIVOT",
    "DEFAULT_RADIUS",
    "DEFAULT_FOV_DEG",
    "DRAG_DEG_PER_VIEWPORT",
    "model_radius_range",
    "ray_interval",
]

PITCH_LIMIT = math.radians(85.0)  # |pitch| <= 85 deg: the look-at frame stays defined (never straight up/down)
RADIUS_RANGE = (0.5, 20.0)
DEFAULT_PIVOT = (0.0, 0.0, 0.2)  # EG3D FFHQ avg_camera_pivot
DEFAULT_RADIUS = 2.7  # EG3D FFHQ avg_camera_radius
DEFAULT_FOV_DEG = 18.837  # EG3D FFHQ field of view (diagonal)
DRAG_DEG_PER_VIEWPORT = 180.0  # a left-drag across the whole viewport turns the object this much


def ray_interval(rendering_kwargs: dict, radius: float) -> tuple[float, float]:
    """The model's ray interval [ray_start, ray_end] moved with the camera's distance to the pivot: EG3D renders
    t in [ray_start, ray_end] for cameras at avg_camera_radius; a camera `radius - avg_camera_radius` farther needs the
    interval shifted by as much to hold the same slab of space around the pivot (equal at the trained radius)."""
    shift = float(radius) - float(rendering_kwargs.get("avg_camera_radius", DEFAULT_RADIUS))
    return float(rendering_kwargs["ray_start"]) + shift, float(rendering_kwargs["ray_end"]) + shift


def model_radius_range(rendering_kwargs: dict) -> tuple[float, float]:
    """Orbit radii at which the model renders: from the box's half-diagonal (closer, the camera enters the box
    [-box_warp/2, box_warp/2]^3 and the near bound of `ray_interval` cuts the object) to twice the trained radius
    (the object at half its trained size). Both bounds keep the near bound in front of the camera:
    radius - (avg_camera_radius - ray_start) > 0."""
    r0 = float(rendering_kwargs.get("avg_camera_radius", DEFAULT_RADIUS))
    near = r0 - float(rendering_kwargs["ray_start"])  # the interval's near bound lies `near` in front of the pivot
    half_diag = float(rendering_kwargs.get("box_warp", 1.0)) * math.sqrt(3.0) / 2
    lo = max(half_diag, near + 0.05)
    return lo, max(2.0 * r0, lo)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass
class OrbitCamera:
    yaw: float = 0.0
    pitch: float = 0.0
    radius: float = DEFAULT_RADIUS
    fov_deg: float = DEFAULT_FOV_DEG
    pivot: tuple[float, float, float] = DEFAULT_PIVOT
    orbit_speed: float = 0.01  # radians per pixel of left-drag when the viewport size is not given
    zoom_step: float = 0.9  # radius factor per wheel notch
    home: dict = field(default_factory=dict, repr=False)
    radius_range: tuple[float, float] = RADIUS_RANGE

    def __post_init__(self):
        self.pitch = _clamp(self.pitch, -PITCH_LIMIT, PITCH_LIMIT)
        self.pivot = tuple(float(v) for v in self.pivot)
        self.radius_range = (float(self.radius_range[0]), float(self.radius_range[1]))
        self.radius = _clamp(self.radius, *self.radius_range)
        if not self.home:
            self.home = {"yaw": self.yaw, "pitch": self.pitch, "radius": self.radius, "pivot": self.pivot}

    # ------------------------------------------------------------------ gestures
    def orbit(self, dx: float, dy: float, viewport_px: float | None = None) -> None:
        """Left-drag by (dx, dy) pixels (x right, y down) on a viewport `viewport_px` pixels wide: a full-width drag
        turns DRAG_DEG_PER_VIEWPORT degrees (without a size: `orbit_speed` radians per pixel)."""
        speed = self.orbit_speed if not viewport_px else math.radians(DRAG_DEG_PER_VIEWPORT) / float(viewport_px)
        self.yaw = math.remainder(self.yaw - dx * speed, 2 * math.pi)
        self.pitch = _clamp(self.pitch + dy * speed, -PITCH_LIMIT, PITCH_LIMIT)

    def pan(self, dx: float, dy: float, viewport_height_px: float) -> None:
        """Right-drag by (dx, dy) pixels: move the pivot in the image plane so the pivot's depth follows the mouse."""
        scale = self.world_per_pixel(viewport_height_px)
        right, down, _ = self.axes()
        self.pivot = tuple(p - scale * (dx * r + dy * d) for p, r, d in zip(self.pivot, right, down, strict=True))

    def zoom(self, wheel: float) -> None:
        """Mouse wheel notches (> 0: towards the pivot)."""
        self.radius = _clamp(self.radius * self.zoom_step**wheel, *self.radius_range)

    def reset(self) -> None:
        self.yaw, self.pitch, self.radius = self.home["yaw"], self.home["pitch"], self.home["radius"]
        self.pivot = tuple(self.home["pivot"])

    # ------------------------------------------------------------------ geometry
    @property
    def focal(self) -> float:
        """Normalised focal length (EG3D's diagonal FOV convention, as core.cameras.fov_to_focal)."""
        return 1.0 / (math.sqrt(2.0) * math.tan(math.radians(self.fov_deg) / 2))

    def world_per_pixel(self, viewport_height_px: float) -> float:
        """World units per screen pixel at the pivot's depth."""
        return self.radius / (self.focal * max(1.0, float(viewport_height_px)))

    def position(self) -> tuple[float, float, float]:
        cp, sp, cy, sy = math.cos(self.pitch), math.sin(self.pitch), math.cos(self.yaw), math.sin(self.yaw)
        d = (cp * sy, sp, cp * cy)
        return tuple(p + self.radius * v for p, v in zip(self.pivot, d, strict=True))

    def axes(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """Camera right, down, forward (OpenCV) in world coordinates, as core.cameras.look_at with +y up."""
        cp, sp, cy, sy = math.cos(self.pitch), math.sin(self.pitch), math.cos(self.yaw), math.sin(self.yaw)
        forward = (-cp * sy, -sp, -cp * cy)
        right = (cy, 0.0, -sy)  # -normalize(up x forward)
        down = (  # forward x right
            forward[1] * right[2] - forward[2] * right[1],
            forward[2] * right[0] - forward[0] * right[2],
            forward[0] * right[1] - forward[1] * right[0],
        )
        return right, down, forward

    def key(self) -> tuple:
        """Hashable pose, for change detection and request stamps."""
        return (
            round(self.yaw, 9),
            round(self.pitch, 9),
            round(self.radius, 9),
            round(self.fov_deg, 9),
            tuple(round(p, 9) for p in self.pivot),
        )

    def copy(self) -> "OrbitCamera":
        return OrbitCamera(
            self.yaw,
            self.pitch,
            self.radius,
            self.fov_deg,
            self.pivot,
            self.orbit_speed,
            self.zoom_step,
            dict(self.home),
            self.radius_range,
        )

    def cameras(self):
        """The `core.cameras.Cameras` batch of one for this pose."""
        from tristudio.core.cameras import Cameras

        return Cameras.orbit(self.yaw, self.pitch, self.radius, self.fov_deg, self.pivot)
