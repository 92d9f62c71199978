"""The viewer's TrainingWorker without a window: steps in a thread, pause / hold / stop, errors, the metric series."""

from __future__ import annotations

import time

import pytest
import torch

from tristudio.viewer.workers import TrainingWorker


class Counter:
    """A fake optimiser: each step sleeps a little and returns a loss."""

    def __init__(self, delay=0.005, fail_at=None):
        self.n, self.delay, self.fail_at = 0, delay, fail_at
        self.threads_seen = None

    def step(self):
        self.threads_seen = torch.get_num_threads()
        time.sleep(self.delay)
        if self.fail_at is not None and self.n == self.fail_at:
            raise RuntimeError("synthetic failure")
        self.n += 1
        return {"step": self.n - 1, "loss": 1.0 / self.n, "guidance_grad_norm": 2.0}


def _until(cond, timeout=10.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_runs_to_total_then_finishes():
    c = Counter()
    w = TrainingWorker(c.step, total=20, count=lambda: c.n)
    w.start()
    assert _until(lambda: not w.alive)
    assert c.n == 20 and w.finished and w.state == "finished"
    steps, loss = w.series("step", "loss")
    assert list(steps) == list(range(20))
    assert loss[0] == 1.0 and loss[-1] == pytest.approx(1 / 20)
    assert w.steps_per_s > 0


def test_pause_hold_and_stop():
    c = Counter()
    w = TrainingWorker(c.step, total=10**9, count=lambda: c.n)
    w.start()
    assert _until(lambda: c.n >= 3)
    w.pause()
    time.sleep(0.05)  # the step in flight ends
    n = c.n
    time.sleep(0.3)
    assert c.n == n and w.state == "paused" and w.alive
    w.resume()
    assert _until(lambda: c.n > n + 3)
    w.hold(0.4)  # the camera moves: no new step until the hold expires
    time.sleep(0.05)
    n = c.n
    time.sleep(0.2)
    assert c.n == n and w.holding
    assert _until(lambda: c.n > n, timeout=2.0)  # and then it goes on by itself
    assert w.held_s > 0.1
    assert w.stop(5)
    n = c.n
    time.sleep(0.2)
    assert c.n == n and not w.alive and w.state == "stopped"
    w.start()  # continues from the count
    assert _until(lambda: c.n > n + 2)
    w.stop(5)


def test_an_exception_ends_the_loop_and_is_kept():
    c = Counter(fail_at=4)
    w = TrainingWorker(c.step, total=100, count=lambda: c.n)
    w.start()
    assert _until(lambda: not w.alive)
    assert w.state == "error" and "synthetic failure" in w.error and "RuntimeError" in w.error
    assert "Traceback" in w.trace
    assert len(w.history) == 4


def test_setup_errors_are_kept_and_threads_are_per_thread():
    def bad_setup():
        raise FileNotFoundError("no prior here")

    w = TrainingWorker(lambda: {}, total=10, count=lambda: 0, setup=bad_setup)
    w.start()
    assert _until(lambda: not w.alive)
    assert "no prior here" in w.error and not w.setup_done
    before = torch.get_num_threads()
    c = Counter()
    w = TrainingWorker(c.step, total=3, count=lambda: c.n, threads=1)
    w.start()
    assert _until(lambda: not w.alive)
    assert c.threads_seen == 1
    assert torch.get_num_threads() == before  # the setting stays in the training thread
