"""Viewer background pieces without a window: render worker (latest request wins), errors, baking, mesh, captures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from tristudio.viewer.generator_session import Frame
from tristudio.viewer.workers import Job, JobWorker, RenderRequest, RenderWorker, WorkerError


class SlowEngine:
    def __init__(self, delay=0.15, fail_on=()):
        self.delay, self.fail_on, self.calls = delay, set(fail_on), []
        self.started = threading.Event()

    def render(self, spec, camera, settings, resolution):
        self.calls.append(spec)
        self.started.set()
        time.sleep(self.delay)
        if spec in self.fail_on:
            raise ValueError(f"bad spec {spec}")
        return Frame(rgba=np.zeros((2, 2, 4), np.uint8))


def _collect(worker, n, timeout=10.0):
    out, t0 = [], time.perf_counter()
    while len(out) < n and time.perf_counter() - t0 < timeout:
        try:
            out.append(worker.results.get(timeout=0.05))
        except Exception:
            pass
    return out


def test_latest_request_wins():
    eng = SlowEngine()
    w = RenderWorker(lambda: eng)
    try:
        w.submit(RenderRequest(1, "a", None, None))
        assert eng.started.wait(5)
        for i in range(2, 11):  # arrive while request 1 renders: only the last survives
            w.submit(RenderRequest(i, f"s{i}", None, None))
        results = _collect(w, 2)
        time.sleep(0.3)
        assert w.results.empty()
        assert [r.stamp for r in results] == [1, 10]
        assert eng.calls == ["a", "s10"]
        assert w.dropped == 8
    finally:
        w.stop()


def test_render_exception_is_reported_and_the_worker_lives_on():
    eng = SlowEngine(delay=0.0, fail_on={"bad"})
    w = RenderWorker(lambda: eng)
    try:
        w.submit(RenderRequest(1, "bad", None, None))
        (err,) = _collect(w, 1)
        assert isinstance(err, WorkerError) and "bad spec" in err.message and err.stamp == 1
        w.submit(RenderRequest(2, "good", None, None))
        (ok,) = _collect(w, 1)
        assert isinstance(ok, Frame) and ok.stamp == 2
    finally:
        w.stop()


def test_job_progress_cancel_and_error():
    jobs = JobWorker()
    gate = threading.Event()

    def long(job):
        for i in range(1000):
            gate.wait(0.01)
            job.step(i / 1000)
        return "finished"

    job = Job("long", long)
    assert jobs.start(job)
    assert not jobs.start(Job("second", long))  # one at a time
    time.sleep(0.1)
    job.cancel()
    jobs.wait(5)
    assert job.done and job.cancelled and 0 < job.progress < 1
    bad = Job("bad", lambda job: 1 / 0)
    jobs.start(bad)
    jobs.wait(5)
    assert bad.done and "ZeroDivisionError" in bad.error


def test_mesh_from_grid_sphere_is_watertight_and_in_world_units():
    import trimesh

    from tristudio.core.mesh import mesh_from_grid, voxel_centres

    r = 40
    ax = voxel_centres(r, 1.0)
    z, y, x = torch.meshgrid(ax, ax, ax, indexing="ij")
    grid = torch.zeros(r, r, r, 4)
    grid[..., 3] = 20 * (0.3 - torch.sqrt((x - 0.1) ** 2 + y**2 + z**2))  # sphere of radius 0.3 at x = 0.1
    verts, faces = mesh_from_grid(grid, 0.0, 1.0)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    assert mesh.is_watertight
    dist = np.linalg.norm(verts - np.array([0.1, 0.0, 0.0]), axis=1)
    assert np.abs(dist - 0.3).max() < 0.02
    assert mesh.volume > 0  # outward normals: the axis swap keeps the winding right
    with pytest.raises(ValueError, match="outside the field's range"):
        mesh_from_grid(grid, 1000.0)


def test_bake_matches_the_field_at_voxel_centres():
    from tristudio.core.eg3d.bake import bake_grid
    from tristudio.core.mesh import voxel_centres
    from tristudio.core.render.triplane import triplane_field
    from tristudio.viewer.model import random_model

    G = random_model("tiny")
    planes = torch.randn(1, 3, G.plane_channels, 16, 16)
    grid = bake_grid(planes, G.decoder, 12)
    ax = voxel_centres(12)
    i, j, k = 3, 7, 10  # [z][y][x]
    p = torch.tensor([[[ax[k], ax[j], ax[i]]]])
    out = triplane_field(planes, G.decoder)(p, torch.zeros_like(p))
    assert grid[i, j, k, 3].item() == pytest.approx(out["sigma"][0, 0, 0].item(), abs=1e-5)
    assert torch.allclose(grid[i, j, k, :3], out["rgb"][0, 0, :3], atol=1e-5)


def test_capture_paths_increase(tmp_path):
    from tristudio.viewer.state import CaptureState

    s = CaptureState(capture_dir=str(tmp_path))
    p1 = s.path("render", "png")
    p1.write_bytes(b"x")
    p2 = s.path("render", "png")
    assert (p1.name, p2.name) == ("render_0001.png", "render_0002.png")
    assert s.path("orbit", "mp4").name == "orbit_0001.mp4"


def test_background_replacement_of_a_white_back_model_matches_compositing_by_hand():
    """A white_back model's raw image already holds (1 - opacity) of white; replacing the background must remove it
    (premultiplied colour c * a + (1 - a) * bg), and 'model' keeps white."""
    import torch

    from tristudio.viewer.images import to_rgba

    g = torch.Generator().manual_seed(0)
    colour = torch.rand(1, 3, 4, 4, generator=g)  # premultiplied over black, in [0, a]
    alpha = torch.rand(1, 1, 4, 4, generator=g)
    colour = colour * alpha
    white = colour + (1 - alpha)  # what a white_back renderer composites
    out = {"image_raw": white * 2 - 1, "image_opacity": alpha, "image_depth": torch.full((1, 1, 4, 4), 2.7)}
    for bg, value in (("black", 0.0), ("grey", 0.5), ("white", 1.0)):
        got = to_rgba(out, "raw", bg, white_back=True)[..., :3].astype(float) / 255
        want = (colour + (1 - alpha) * value)[0].permute(1, 2, 0).numpy()
        assert abs(got - want).max() <= 1 / 255 + 1e-6, bg
    kept = to_rgba(out, "raw", "model", white_back=True)[..., :3].astype(float) / 255
    assert abs(kept - white[0].permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
    # a black-background model: "black" changes nothing
    plain = {**out, "image_raw": colour * 2 - 1}
    a = to_rgba(plain, "raw", "model").astype(int)
    b = to_rgba(plain, "raw", "black").astype(int)
    assert abs(a - b).max() <= 1
