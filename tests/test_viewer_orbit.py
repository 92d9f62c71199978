"""Orbit camera math and dynamic resolution (no GL, no window)."""

from __future__ import annotations

import math

import pytest
import torch

from tristudio.core.cameras import Cameras, project_points
from tristudio.viewer.dynres import DynamicResolution
from tristudio.viewer.orbit import PITCH_LIMIT, RADIUS_RANGE, OrbitCamera


def test_pose_matches_core_cameras():
    cam = OrbitCamera(yaw=0.7, pitch=-0.3, radius=3.1, pivot=(0.1, -0.2, 0.3))
    c2w = cam.cameras().cam2world[0]
    right, down, forward = (torch.tensor(v) for v in cam.axes())
    assert torch.allclose(c2w[:3, 0], right, atol=1e-6)
    assert torch.allclose(c2w[:3, 1], down, atol=1e-6)
    assert torch.allclose(c2w[:3, 2], forward, atol=1e-6)
    assert torch.allclose(c2w[:3, 3], torch.tensor(cam.position()), atol=1e-6)
    assert math.dist(cam.position(), cam.pivot) == pytest.approx(3.1)


def test_left_drag_turns_yaw_and_pitch_with_clamp():
    cam = OrbitCamera(orbit_speed=0.01)
    cam.orbit(50, 0)
    assert cam.yaw == pytest.approx(-0.5) and cam.pitch == 0.0
    cam.orbit(0, 30)
    assert cam.pitch == pytest.approx(0.3)
    cam.orbit(0, 10_000)
    assert cam.pitch == pytest.approx(PITCH_LIMIT)
    cam.orbit(0, -100_000)
    assert cam.pitch == pytest.approx(-PITCH_LIMIT)
    cam.orbit(-2 * math.pi / 0.01, 0)  # a full turn wraps
    assert abs(cam.yaw - (-0.5)) < 1e-6


def test_pan_moves_pivot_so_it_follows_the_mouse():
    cam = OrbitCamera(yaw=0.4, pitch=0.2)
    h = 400
    before = cam.pivot
    # A world point at the old pivot must move by (dx, dy) pixels on screen after the pan.
    cam.pan(20, -10, h)
    uv, _ = project_points(torch.tensor([[before]], dtype=torch.float32), cam.cameras())
    px = (uv[0, 0] - 0.5) * h
    assert px[0].item() == pytest.approx(20, abs=0.2)
    assert px[1].item() == pytest.approx(-10, abs=0.2)
    # The pivot moved within the image plane (perpendicular to the view direction).
    _, _, fwd = cam.axes()
    delta = [a - b for a, b in zip(cam.pivot, before, strict=True)]
    assert abs(sum(d * f for d, f in zip(delta, fwd, strict=True))) < 1e-9


def test_zoom_and_reset():
    cam = OrbitCamera(radius=2.0)
    cam.zoom(1)
    assert cam.radius == pytest.approx(1.8)
    cam.zoom(-2)
    assert cam.radius == pytest.approx(2.0 / 0.9)
    cam.zoom(1000)
    assert cam.radius == RADIUS_RANGE[0]
    cam.orbit(10, 10)
    cam.pan(5, 5, 100)
    cam.reset()
    assert (cam.yaw, cam.pitch, cam.radius, cam.pivot) == (0.0, 0.0, 2.0, (0.0, 0.0, 0.2))


def test_focal_matches_core():
    from tristudio.core.cameras import fov_to_focal

    cam = OrbitCamera(fov_deg=30.0)
    assert cam.focal == pytest.approx(fov_to_focal(30.0))
    assert isinstance(cam.cameras(), Cameras)


def test_dynamic_resolution_hysteresis_and_floor():
    d = DynamicResolution(full=256, target_ms=100, floor=64, hysteresis=0.25)
    assert d.current == 256
    assert d.update(110, 256) == 256  # inside the band: unchanged
    assert d.update(80, 256) == 256
    r = d.update(400, 256)  # 4x too slow: about half the side
    assert 120 <= r <= 136
    assert d.update(10_000, r) == 64  # never below the floor
    assert d.update(1, 64) == 256  # never above full
    with pytest.raises(ValueError):
        DynamicResolution(hysteresis=0.1)
    small = DynamicResolution(full=32, floor=64)
    assert small.update(10_000, 32) == 32  # the floor never exceeds the full resolution


# ----------------------------------------------------------------------------------------- issue 14: camera limits

HEADS_RK = {"ray_start": 2.25, "ray_end": 3.3, "box_warp": 1.0, "avg_camera_radius": 2.7}  # EG3D FFHQ's


def test_a_full_width_drag_turns_180_degrees_whatever_the_viewport_size():
    from tristudio.viewer.orbit import DRAG_DEG_PER_VIEWPORT

    assert DRAG_DEG_PER_VIEWPORT == 180.0
    for width in (300, 640, 1400):
        cam = OrbitCamera()
        cam.orbit(width, 0, width)
        assert abs(cam.yaw) == pytest.approx(math.pi)  # +-pi: the same half turn
        cam = OrbitCamera()
        cam.orbit(150, 0, width)  # issue 14: a 150 px drag turned the head by 86 deg whatever the size
        assert math.degrees(cam.yaw) == pytest.approx(-180.0 * 150 / width)
        cam.orbit(0, width / 4, width)
        assert math.degrees(cam.pitch) == pytest.approx(45.0)


def test_ray_interval_moves_with_the_radius_and_is_the_models_at_the_trained_radius():
    from tristudio.viewer.orbit import ray_interval

    assert ray_interval(HEADS_RK, 2.7) == pytest.approx((2.25, 3.3))
    for r in (1.0, 2.0, 4.5):
        near, far = ray_interval(HEADS_RK, r)
        # the same slab of space around the pivot: [pivot - 0.45, pivot + 0.6] along the view axis
        assert (r - near, far - r) == pytest.approx((2.7 - 2.25, 3.3 - 2.7))


def test_radius_range_keeps_the_box_in_front_and_the_zoom_clamps_to_it():
    from tristudio.viewer.orbit import model_radius_range, ray_interval

    lo, hi = model_radius_range(HEADS_RK)
    half_diag = math.sqrt(3) / 2
    assert lo == pytest.approx(half_diag)  # closer, the camera would be inside the box [-0.5, 0.5]^3
    assert hi == pytest.approx(2 * 2.7)  # farther, the object is under half its trained size
    assert ray_interval(HEADS_RK, lo)[0] > 0  # the near bound stays in front of the camera
    # a model whose near bound is far in front of the pivot: the range starts where that bound is still > 0
    deep = {**HEADS_RK, "ray_start": 1.0}
    assert ray_interval(deep, model_radius_range(deep)[0])[0] > 0
    cam = OrbitCamera(radius=2.7, radius_range=(lo, hi))
    cam.zoom(1000)
    assert cam.radius == pytest.approx(lo)
    cam.zoom(-1000)
    assert cam.radius == pytest.approx(hi)
    assert OrbitCamera(radius=50.0, radius_range=(lo, hi)).radius == pytest.approx(hi)  # clamped at birth too
    assert cam.copy().radius_range == (lo, hi)
