"""Cameras: EG3D conventions, projection <-> rays, labels, FOV."""

import math

import pytest
import torch

from tristudio.core.cameras import (
    FFHQ_PIVOT,
    Cameras,
    eg3d_lookat_sampler,
    focal_to_fov,
    fov_to_focal,
    orbit_cam2world,
    project_points,
)


def test_frontal_ffhq_label_matches_eg3d():
    # EG3D's frontal FFHQ conditioning camera (h = v = pi/2, pivot (0,0,0.2), r 2.7), rotation + translation part.
    c2w = eg3d_lookat_sampler(math.pi / 2, math.pi / 2, pivot=FFHQ_PIVOT, radius=2.7)
    expected = torch.tensor([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]], dtype=torch.float32)
    assert torch.allclose(c2w[0], expected, atol=1e-6)


def test_fov_focal_round_trip_and_ffhq_value():
    # the half-diagonal of a unit image (sqrt(2)/2) subtends half the FOV
    for fov in (18.837, 30.0):
        assert math.atan((math.sqrt(2) / 2) / fov_to_focal(fov)) == pytest.approx(math.radians(fov) / 2, rel=1e-12)
    # EG3D's truncated constants (3.14159, 1.414) give 4.2634 for FFHQ's 18.837 deg: within 2e-4 relative
    eg3d = 1 / (math.tan(18.837 * 3.14159 / 360) * 1.414)
    assert fov_to_focal(18.837) == pytest.approx(eg3d, rel=2e-4)
    for fov in (10.0, 18.837, 45.0, 90.0):
        assert focal_to_fov(fov_to_focal(fov)) == pytest.approx(fov, rel=1e-9)


def test_orbit_camera_is_orthonormal_and_looks_at_pivot():
    pivot = torch.tensor([0.1, -0.2, 0.3])
    yaw = torch.linspace(-1.2, 1.2, 7)
    c2w = orbit_cam2world(yaw, 0.3, 2.5, pivot=pivot)
    r = c2w[:, :3, :3]
    assert torch.allclose(r.transpose(1, 2) @ r, torch.eye(3).expand(7, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(7), atol=1e-5)
    to_pivot = torch.nn.functional.normalize(pivot - c2w[:, :3, 3], dim=-1)
    assert torch.allclose(r[:, :, 2], to_pivot, atol=1e-6)  # camera z (forward) points at the pivot
    assert torch.allclose((c2w[:, :3, 3] - pivot).norm(dim=-1), torch.full((7,), 2.5), atol=1e-5)
    # pitch > 0 looks from above; image "down" (camera y) has a negative world-y component (world +y is up)
    assert (c2w[:, 1, 3] > pivot[1]).all() and (r[:, 1, 1] < 0).all()
    # yaw > 0 moves the camera towards +x
    assert c2w[-1, 0, 3] > pivot[0] > c2w[0, 0, 3]


def test_label_round_trip():
    cams = Cameras.orbit(torch.tensor([0.0, 0.5, -0.7]), torch.tensor([0.1, -0.2, 0.3]), 2.7, fov_deg=18.837)
    label = cams.label()
    assert label.shape == (3, 25)
    back = Cameras.from_label(label)
    assert torch.equal(back.cam2world, cams.cam2world) and torch.equal(back.intrinsics, cams.intrinsics)
    assert torch.equal(back.label(), label)
    with pytest.raises(ValueError, match="25"):
        Cameras.from_label(torch.zeros(2, 24))


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80)])
def test_known_point_projects_to_pixel_and_ray_passes_through_it(height, width):
    gen = torch.Generator().manual_seed(0)
    k = torch.tensor([[[3.1, 0.02, 0.47], [0.0, 2.7, 0.55], [0.0, 0.0, 1.0]]])  # with skew and an off-centre point
    cams = Cameras(orbit_cam2world(0.4, -0.25, 2.2, pivot=(0.05, 0.1, -0.1)), k)
    rays = cams.rays(height, width)
    # pick pixels, place a point on each pixel's ray, project it back
    idx = torch.randint(0, height * width, (20,), generator=gen)
    t = 1.5 + torch.rand(20, generator=gen)
    points = rays.origins[0, idx] + t[:, None] * rays.directions[0, idx]
    uv, z = project_points(points[None], cams)
    rows, cols = idx // width, idx % width
    assert torch.allclose(uv[0, :, 0], (cols + 0.5) / width, atol=1e-5)
    assert torch.allclose(uv[0, :, 1], (rows + 0.5) / height, atol=1e-5)
    assert (z > 0).all()
    # and the other way: a known world point -> its pixel -> that pixel's ray passes through the point
    p = torch.tensor([[[0.1, 0.05, -0.02]]])
    uv, _ = project_points(p, cams)
    col, row = uv[0, 0, 0] * width - 0.5, uv[0, 0, 1] * height - 0.5
    # build the ray through the exact (sub-pixel) image position with the same formula as rays()
    fx, fy, cx, cy, sk = k[0, 0, 0], k[0, 1, 1], k[0, 0, 2], k[0, 1, 2], k[0, 0, 1]
    u, v = (col + 0.5) / width, (row + 0.5) / height
    y_cam = (v - cy) / fy
    x_cam = (u - cx - sk * y_cam) / fx
    d = cams.cam2world[0, :3, :3] @ torch.stack([x_cam, y_cam, torch.tensor(1.0)])
    d = d / d.norm()
    o = cams.cam2world[0, :3, 3]
    to_p = p[0, 0] - o
    dist_to_ray = (to_p - (to_p @ d) * d).norm()
    assert dist_to_ray < 1e-5


def test_rays_are_unit_and_centre_ray_hits_principal_point():
    cams = Cameras.orbit(0.3, 0.2, 2.7, pivot=(0, 0, 0.2))
    rays = cams.rays(33)  # odd size: the centre pixel is the principal point
    assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(1, 33 * 33), atol=1e-6)
    centre = rays.directions[0, 16 * 33 + 16]
    assert torch.allclose(centre, cams.cam2world[0, :3, 2], atol=1e-6)
