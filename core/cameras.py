"""Cameras in EG3D's conventions: one camera type for the whole of tristudio.

World frame: right-handed, +y up. A frontal EG3D face camera sits on +z looking towards -z.
Camera frame: OpenCV (x right, y down, z forward). `cam2world` maps camera coordinates to world coordinates;
its columns are the camera's right, down and forward axes in world coordinates, and its last column the centre.

Intrinsics are *normalised by the image size*: u, v in [0, 1] across the image (u = column / width, v = row / height),
so K = [[fx, sk, cx], [0, fy, cy], [0, 0, 1]] with cx = cy = 0.5 for a centred principal point. A pixel (row i,
column j) has its centre at u = (j + 0.5) / W, v = (i + 0.5) / H.

The EG3D label is 25 floats: cam2world flattened row-major (16) followed by the normalised intrinsics (9).

Angles: `yaw` turns the camera about the +y axis through the orbit centre (yaw = 0 is frontal, on +z; yaw > 0 moves
the camera towards +x); `pitch` is the true elevation angle (pitch > 0 looks from above). Both in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "Cameras",
    "RayBundle",
    "fov_to_focal",
    "focal_to_fov",
    "intrinsics_from_fov",
    "look_at",
    "orbit_cam2world",
    "eg3d_lookat_sampler",
    "project_points",
    "FFHQ_FOV_DEG",
    "FFHQ_RADIUS",
    "FFHQ_PIVOT",
]

# EG3D's FFHQ camera distribution (rendering_kwargs avg_camera_radius / avg_camera_pivot; gen_samples' fov).
FFHQ_FOV_DEG = 18.837
FFHQ_RADIUS = 2.7
FFHQ_PIVOT = (0.0, 0.0, 0.2)


def fov_to_focal(fov_deg: float | Tensor) -> float | Tensor:
    """Normalised focal length for EG3D's field of view (degrees).

    EG3D measures the field of view across the image *diagonal*: tan(fov/2) = (sqrt(2)/2) / f for an image of unit
    size, i.e. f = 1 / (sqrt(2) tan(fov/2)). (EG3D's own code truncates pi and sqrt(2) to 3.14159 and 1.414, giving
    4.2634 for 18.837 deg; we use the exact constants: 18.837 deg -> 4.2627.)
    """
    if isinstance(fov_deg, Tensor):
        return 1.0 / (math.sqrt(2.0) * torch.tan(torch.deg2rad(fov_deg) / 2))
    return 1.0 / (math.sqrt(2.0) * math.tan(math.radians(fov_deg) / 2))


def focal_to_fov(focal: float | Tensor) -> float | Tensor:
    """Inverse of `fov_to_focal`: diagonal field of view in degrees for a normalised focal length."""
    if isinstance(focal, Tensor):
        return torch.rad2deg(2 * torch.atan(1.0 / (math.sqrt(2.0) * focal)))
    return math.degrees(2 * math.atan(1.0 / (math.sqrt(2.0) * focal)))


def intrinsics_from_fov(fov_deg: float, n: int = 1, device=None) -> Float[Tensor, "n 3 3"]:
    """Normalised intrinsics [[f, 0, 0.5], [0, f, 0.5], [0, 0, 1]] for a diagonal FOV in degrees."""
    f = fov_to_focal(float(fov_deg))
    k = torch.tensor([[f, 0.0, 0.5], [0.0, f, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float32, device=device)
    return k.expand(n, 3, 3).clone()


def look_at(
    origin: Float[Tensor, "*b 3"], target: Float[Tensor, "*b 3"], world_up=(0.0, 1.0, 0.0)
) -> Float[Tensor, "*b 4 4"]:
    """OpenCV cam2world for a camera at `origin` looking at `target` with world `up` (+y) pointing up in the image.

    Columns: right (x), down (y), forward (z), origin. Mirrors EG3D's create_cam2world_matrix.
    """
    origin, target = torch.broadcast_tensors(origin, target)
    up = torch.tensor(world_up, dtype=origin.dtype, device=origin.device).expand_as(origin)
    forward = torch.nn.functional.normalize(target - origin, dim=-1)
    right = -torch.nn.functional.normalize(torch.linalg.cross(up, forward, dim=-1), dim=-1)
    down = torch.nn.functional.normalize(torch.linalg.cross(forward, right, dim=-1), dim=-1)
    m = torch.zeros(*origin.shape[:-1], 4, 4, dtype=origin.dtype, device=origin.device)
    m[..., :3, 0] = right
    m[..., :3, 1] = down
    m[..., :3, 2] = forward
    m[..., :3, 3] = origin
    m[..., 3, 3] = 1.0
    return m


def orbit_cam2world(
    yaw: float | Tensor,
    pitch: float | Tensor,
    radius: float | Tensor = FFHQ_RADIUS,
    pivot=(0.0, 0.0, 0.0),
    center=None,
) -> Float[Tensor, "n 4 4"]:
    """Camera on a sphere of `radius` around `center` (default: the pivot), looking at `pivot`.

    yaw = pitch = 0 puts the camera at center + (0, 0, radius). EG3D's own sampler orbits the world origin while
    looking at the pivot: pass center=(0, 0, 0) to reproduce it.
    """
    yaw_t, pitch_t, radius_t = (torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in (yaw, pitch, radius))
    yaw_t, pitch_t, radius_t = torch.broadcast_tensors(yaw_t, pitch_t, radius_t)
    pivot_t = torch.as_tensor(pivot, dtype=torch.float32).reshape(-1, 3)
    center_t = pivot_t if center is None else torch.as_tensor(center, dtype=torch.float32).reshape(-1, 3)
    direction = torch.stack(
        [torch.cos(pitch_t) * torch.sin(yaw_t), torch.sin(pitch_t), torch.cos(pitch_t) * torch.cos(yaw_t)], dim=-1
    )
    origin = center_t + radius_t[:, None] * direction
    return look_at(origin, pivot_t.expand_as(origin))


def eg3d_lookat_sampler(
    horizontal_mean: float,
    vertical_mean: float,
    pivot=FFHQ_PIVOT,
    radius: float = FFHQ_RADIUS,
    horizontal_stddev: float = 0.0,
    vertical_stddev: float = 0.0,
    n: int = 1,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "n 4 4"]:
    """EG3D's GaussianCameraPoseSampler / LookAtPoseSampler (h, v in radians; frontal = (pi/2, pi/2)).

    h ~ N(h_mean, h_std), v ~ N(v_mean, v_std) clamped to (1e-5, pi - 1e-5), polar angle phi = arccos(1 - 2 v / pi),
    camera on the sphere of `radius` around the *world origin* looking at the pivot.
    """
    h = horizontal_mean + horizontal_stddev * torch.randn(n, generator=generator)
    v = vertical_mean + vertical_stddev * torch.randn(n, generator=generator)
    v = v.clamp(1e-5, math.pi - 1e-5)
    phi = torch.arccos(1 - 2 * v / math.pi)
    # EG3D: origin = r (sin phi cos(pi - h), cos phi, sin phi sin(pi - h)). In yaw/pitch terms: yaw = h - pi/2,
    # pitch = pi/2 - phi.
    return orbit_cam2world(h - math.pi / 2, math.pi / 2 - phi, radius, pivot=pivot, center=(0.0, 0.0, 0.0))


@dataclass
class RayBundle:
    """Rays for a batch of cameras. M = H * W rays per camera, row-major (row index slow), through pixel centres."""

    origins: Float[Tensor, "n m 3"]  # world-space ray origins (the camera centre, repeated)
    directions: Float[Tensor, "n m 3"]  # world-space unit directions
    height: int
    width: int


@dataclass
class Cameras:
    """A batch of N pinhole cameras: OpenCV cam2world (N, 4, 4) and normalised intrinsics (N, 3, 3), float32."""

    cam2world: Float[Tensor, "n 4 4"]
    intrinsics: Float[Tensor, "n 3 3"]

    def __post_init__(self):
        if self.cam2world.ndim == 2:
            self.cam2world = self.cam2world[None]
        if self.intrinsics.ndim == 2:
            self.intrinsics = self.intrinsics[None]
        if self.cam2world.shape[-2:] != (4, 4) or self.intrinsics.shape[-2:] != (3, 3):
            raise ValueError(
                f"Cameras: expected cam2world (N,4,4) and intrinsics (N,3,3), got {tuple(self.cam2world.shape)} "
                f"and {tuple(self.intrinsics.shape)}"
            )
        if self.intrinsics.shape[0] == 1 and self.cam2world.shape[0] > 1:
            self.intrinsics = self.intrinsics.expand(self.cam2world.shape[0], 3, 3)
        if self.intrinsics.shape[0] != self.cam2world.shape[0]:
            raise ValueError(f"Cameras: {self.cam2world.shape[0]} poses but {self.intrinsics.shape[0]} intrinsics")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_label(cls, label: Float[Tensor, "n 25"]) -> "Cameras":
        """From EG3D 25-float labels (cam2world row-major, then normalised intrinsics row-major)."""
        label = torch.as_tensor(label, dtype=torch.float32)
        if label.ndim == 1:
            label = label[None]
        if label.shape[-1] != 25:
            raise ValueError(f"EG3D camera label must have 25 floats, got {label.shape[-1]}")
        return cls(label[:, :16].reshape(-1, 4, 4), label[:, 16:25].reshape(-1, 3, 3))

    @classmethod
    def orbit(
        cls,
        yaw: float | Tensor,
        pitch: float | Tensor,
        radius: float | Tensor = FFHQ_RADIUS,
        fov_deg: float = FFHQ_FOV_DEG,
        pivot=(0.0, 0.0, 0.0),
        center=None,
    ) -> "Cameras":
        """Orbit cameras (see `orbit_cam2world`) with a diagonal FOV in degrees."""
        c2w = orbit_cam2world(yaw, pitch, radius, pivot=pivot, center=center)
        return cls(c2w, intrinsics_from_fov(fov_deg, n=c2w.shape[0]))

    # ------------------------------------------------------------------ conversions
    def label(self) -> Float[Tensor, "n 25"]:
        """EG3D 25-float labels."""
        n = self.cam2world.shape[0]
        return torch.cat([self.cam2world.reshape(n, 16), self.intrinsics.reshape(n, 9)], dim=1)

    def to(self, device) -> "Cameras":
        return Cameras(self.cam2world.to(device), self.intrinsics.to(device))

    def __len__(self) -> int:
        return self.cam2world.shape[0]

    def __getitem__(self, idx) -> "Cameras":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Cameras(self.cam2world[idx], self.intrinsics[idx])

    @property
    def origins(self) -> Float[Tensor, "n 3"]:
        return self.cam2world[:, :3, 3]

    # ------------------------------------------------------------------ rays
    def rays(self, height: int, width: int | None = None) -> RayBundle:
        """Rays through pixel centres, row-major, as EG3D's RaySampler (with the skew term)."""
        width = height if width is None else width
        n = self.cam2world.shape[0]
        dev, dt = self.cam2world.device, self.cam2world.dtype
        rows = (torch.arange(height, device=dev, dtype=dt) + 0.5) / height
        cols = (torch.arange(width, device=dev, dtype=dt) + 0.5) / width
        v, u = torch.meshgrid(rows, cols, indexing="ij")
        u = u.reshape(1, -1).expand(n, -1)
        v = v.reshape(1, -1).expand(n, -1)
        fx, fy = self.intrinsics[:, 0, 0, None], self.intrinsics[:, 1, 1, None]
        cx, cy = self.intrinsics[:, 0, 2, None], self.intrinsics[:, 1, 2, None]
        sk = self.intrinsics[:, 0, 1, None]
        y_cam = (v - cy) / fy
        x_cam = (u - cx - sk * y_cam) / fx  # = (u - cx + cy*sk/fy - sk*v/fy) / fx
        p_cam = torch.stack([x_cam, y_cam, torch.ones_like(x_cam)], dim=-1)  # (n, m, 3), z = 1 plane
        dirs = torch.einsum("nij,nmj->nmi", self.cam2world[:, :3, :3], p_cam)
        dirs = torch.nn.functional.normalize(dirs, dim=-1)
        origins = self.origins[:, None, :].expand_as(dirs)
        return RayBundle(origins=origins, directions=dirs, height=height, width=width)


def project_points(
    points: Float[Tensor, "n p 3"], cameras: Cameras
) -> tuple[Float[Tensor, "n p 2"], Float[Tensor, "n p"]]:
    """World points -> normalised image coordinates (u, v) in [0, 1] (u across columns) and camera-space depth z."""
    world2cam = torch.linalg.inv(cameras.cam2world)
    p_h = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    p_cam = torch.einsum("nij,npj->npi", world2cam, p_h)[..., :3]
    z = p_cam[..., 2]
    uvw = torch.einsum("nij,npj->npi", cameras.intrinsics, p_cam / z[..., None])
    return uvw[..., :2], z
