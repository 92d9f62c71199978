"""Background threads of the viewer. GL never happens here: workers hand numpy images back through a queue.

RenderWorker: one thread, *latest request wins*. `submit()` replaces any request not yet started (the replaced one
is counted as dropped); every request carries a stamp, increasing; the GUI drops results older than what it shows.
When no render is pending the same thread bakes the current field into a voxel grid, a few slices at a time, so a
new camera request never waits for more than one bake step.

JobWorker: one long job at a time (orbit video, mesh export, hi-res render) with progress in [0, 1] and a cancel
flag, in its own thread. Exceptions in either worker are caught and reported; the threads keep running.

TrainingWorker: an optimisation loop (`setup()` once, then `step()` until `total` steps) in its own thread, with
pause / resume / stop, a metrics history for plots, steps/s, and `hold(seconds)`: the GUI calls it every frame while
the camera moves, and the loop sleeps until the hold expires, so an orbit drag gets the CPU. An exception in setup or
a step ends the loop and is kept (`error`, `trace`) for the GUI; it never reaches the GUI thread.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "RenderRequest",
    "RenderWorker",
    "WorkerError",
    "BakeResult",
    "Job",
    "JobWorker",
    "JobCancelled",
    "TrainingWorker",
]


@dataclass
class RenderRequest:
    stamp: int
    spec: object  # LatentSpec
    camera: object  # OrbitCamera (a copy)
    settings: object  # RenderSettings
    resolution: int | None = None  # None: settings / model default
    full: bool = True
    source: object = (
        None  # what renders it (anything with the GeneratorSession.render signature); None: the app's engine
    )


@dataclass
class WorkerError:
    stamp: int
    where: str
    message: str
    trace: str = ""


@dataclass
class BakeResult:
    spec: object
    generation: int
    resolution: int
    grid: object  # (R, R, R, 4) float32 tensor
    ms: float = 0.0


def _set_thread_count(threads: int | None) -> None:
    """torch intra-op threads for the calling thread (torch's setting is per thread); None: leave torch's."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


class RenderWorker:
    def __init__(self, engine_ref: Callable[[], object], threads: int | None = None):
        self._engine_ref = engine_ref
        self.threads = threads  # torch threads of the render thread (None: torch's default)
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._bake_want: tuple | None = None  # (spec, resolution, generation)
        self._bake_iter = None
        self._bake_key = None
        self._bake_t0 = 0.0
        self._bake_done = None  # the last key baked to completion (not baked again)
        self._stop = False
        self.results: queue.Queue = queue.Queue()
        self.dropped = 0
        self.busy = False
        self.bake_progress = 0.0
        self._thread = threading.Thread(target=self._run, name="tristudio-render", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI side
    def submit(self, req: RenderRequest) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = req
            self._cond.notify()

    def want_bake(self, spec, resolution: int, generation: int) -> None:
        with self._cond:
            key = (spec, int(resolution), generation)
            if key != self._bake_want and key != self._bake_done:
                self._bake_want = key
                self._cond.notify()

    def cancel_bake(self) -> None:
        with self._cond:
            self._bake_want = None

    @property
    def idle(self) -> bool:
        """No render pending or running (a bake may still be going on)."""
        with self._cond:
            return self._pending is None and not self.busy

    @property
    def baking(self) -> bool:
        with self._cond:
            return self._bake_want is not None

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker side
    def _run(self) -> None:
        _set_thread_count(self.threads)
        while True:
            with self._cond:
                while not self._stop and self._pending is None and self._bake_want is None:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                req, self._pending = self._pending, None
                bake_want = self._bake_want
                self.busy = req is not None
            if req is not None:
                self._render(req)
                with self._cond:
                    self.busy = False
            elif bake_want is not None:
                self._bake_step(bake_want)

    def _render(self, req: RenderRequest) -> None:
        try:
            source = req.source if req.source is not None else self._engine_ref()
            frame = source.render(req.spec, req.camera, req.settings, req.resolution)
            frame.stamp, frame.full = req.stamp, req.full
            self.results.put(frame)
        except Exception as exc:  # shown in the GUI; the thread lives on
            self.results.put(WorkerError(req.stamp, "render", f"{type(exc).__name__}: {exc}", traceback.format_exc()))

    def _bake_step(self, want: tuple) -> None:
        spec, resolution, generation = want
        try:
            if self._bake_key != want:
                self._bake_iter = self._engine_ref().bake_iter(spec, resolution)
                self._bake_key = want
                self._bake_t0 = time.perf_counter()
            frac, grid = next(self._bake_iter)
            self.bake_progress = frac
            if grid is not None:
                ms = (time.perf_counter() - self._bake_t0) * 1000
                self.results.put(BakeResult(spec, generation, resolution, grid, ms))
                self._bake_done = want
                self._finish_bake(want)
        except Exception as exc:
            self.results.put(WorkerError(-1, "bake", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            self._bake_done = want  # do not retry a failing bake every frame
            self._finish_bake(want)

    def _finish_bake(self, want: tuple) -> None:
        self._bake_iter, self._bake_key = None, None
        with self._cond:
            if self._bake_want == want:
                self._bake_want = None


class JobCancelled(Exception):
    pass


@dataclass
class Job:
    name: str
    fn: Callable  # fn(job) -> str (a message); calls job.step(fraction) which raises JobCancelled when cancelled
    progress: float = 0.0
    message: str = ""
    error: str = ""
    done: bool = False
    cancelled: bool = False
    result: object = None
    result_path: str = ""
    extra: dict = field(default_factory=dict)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def step(self, fraction: float, message: str | None = None) -> None:
        self.progress = float(fraction)
        if message is not None:
            self.message = message
        if self._cancel.is_set():
            raise JobCancelled()

    def cancel(self) -> None:
        self._cancel.set()


class JobWorker:
    """Runs one Job at a time in a fresh thread; `current` is the running or last job."""

    def __init__(self, threads: int | None = None):
        self.current: Job | None = None
        self._thread: threading.Thread | None = None
        self.threads = threads  # torch threads of each job's thread (None: torch's default)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Job) -> bool:
        if self.running:
            return False
        self.current = job
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"tristudio-job-{job.name}", daemon=True)
        self._thread.start()
        return True

    def _run(self, job: Job) -> None:
        _set_thread_count(self.threads)
        try:
            out = job.fn(job)
            job.result = out
            job.message = str(out) if out is not None else "done"
            job.progress = 1.0
        except JobCancelled:
            job.cancelled = True
            job.message = f"{job.name}: cancelled"
        except Exception as exc:
            job.error = f"{job.name} failed: {type(exc).__name__}: {exc}"
            job.message = ""
            traceback.print_exc()
        finally:
            job.done = True

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class TrainingWorker:
    """setup() then step() -> metrics dict, repeated in a daemon thread until `total` steps, stop() or an error.

    `count()` gives the number of steps done so far (e.g. the optimiser's own counter, so a resumed object counts on);
    the loop ends when it reaches `total`. Metrics are appended to `history` (list of dicts, guarded by `lock`)."""

    def __init__(
        self,
        step: Callable[[], dict],
        total: int,
        count: Callable[[], int],
        setup: Callable[[], None] | None = None,
        name: str = "tristudio-train",
        max_history: int = 20000,
        threads: int | None = None,
    ):
        self._step, self._setup, self._count = step, setup, count
        self.threads = threads  # torch intra-op threads of the training thread (torch's setting is per thread)
        self.total = int(total)
        self.name = name
        self.max_history = max_history
        self.lock = threading.Lock()
        self.history: list[dict] = []
        self.error = ""
        self.trace = ""
        self.finished = False  # reached `total`
        self.setup_done = False
        self.steps_per_s = 0.0
        self.held_s = 0.0  # time spent sleeping for hold()
        self._stop = threading.Event()
        self._run_flag = threading.Event()  # set = running, clear = paused
        self._run_flag.set()
        self._hold_until = 0.0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ GUI side
    def start(self, paused: bool = False) -> None:
        """Run setup() and step; `paused`: set up, then wait for resume() (an opened object is viewed first)."""
        if self.alive:
            return
        self._stop.clear()
        self._run_flag.clear() if paused else self._run_flag.set()
        self.error, self.trace, self.finished = "", "", False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._run_flag.clear()

    def resume(self) -> None:
        self._run_flag.set()

    @property
    def paused(self) -> bool:
        return not self._run_flag.is_set()

    def hold(self, seconds: float = 0.25) -> None:
        """Do not start a step for the next `seconds` (call again to extend): the camera is moving."""
        self._hold_until = time.perf_counter() + seconds

    @property
    def holding(self) -> bool:
        return time.perf_counter() < self._hold_until

    def request_stop(self) -> None:
        """Ask the loop to end after the current step, without waiting (the GUI thread never blocks on a step)."""
        self._stop.set()
        self._run_flag.set()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """request_stop() and wait for the thread; True when it has ended."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.alive:
            if not self.setup_done:
                return "starting"
            return "paused" if self.paused else "running"
        return "finished" if self.finished else ("stopped" if self._thread is not None else "idle")

    @property
    def training(self) -> bool:
        """Stepping now or about to (alive, not paused): the GUI caps its frame rate."""
        return self.alive and not self.paused

    def series(self, *keys: str):
        """Copies of the history as float64 numpy arrays, one per key (x = 'step')."""
        import numpy as np

        with self.lock:
            rows = list(self.history)
        return [np.array([float(r.get(k, np.nan)) for r in rows], dtype=np.float64) for k in keys]

    # ------------------------------------------------------------------ worker side
    def _run(self) -> None:
        try:
            if self.threads:
                import torch

                torch.set_num_threads(int(self.threads))
            if self._setup is not None and not self.setup_done:
                self._setup()
            self.setup_done = True
            recent: list[tuple[float, float]] = []  # (time, seconds of the step) of the last few steps
            while not self._stop.is_set():
                if self._count() >= self.total:
                    self.finished = True
                    break
                if not self._run_flag.is_set():
                    self._run_flag.wait(0.1)
                    continue
                now = time.perf_counter()
                if now < self._hold_until:
                    wait = min(0.05, self._hold_until - now)
                    time.sleep(wait)
                    self.held_s += wait
                    continue
                t0 = time.perf_counter()
                metrics = dict(self._step())
                dt = time.perf_counter() - t0
                metrics["seconds"] = dt
                with self.lock:
                    self.history.append(metrics)
                    del self.history[: -self.max_history]
                recent = (recent + [(t0, dt)])[-20:]
                self.steps_per_s = len(recent) / max(1e-9, sum(d for _, d in recent))
        except Exception as exc:  # kept for the GUI; the app lives on
            self.error = f"{type(exc).__name__}: {exc}"
            self.trace = traceback.format_exc()
