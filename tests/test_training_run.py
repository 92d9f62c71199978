"""core/io/training_run.py: the run folder all trainers share (config, log, checkpoint cadence, resume, plot)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tristudio.core.io.run_checkpoints import latest_step, save_step
from tristudio.core.io.training_run import TrainingRun


def _write_log(run: TrainingRun, lines: list[str]) -> None:
    run.dir.mkdir(parents=True, exist_ok=True)
    run.log_path.write_text("".join(line + "\n" for line in lines))


def _steps(run: TrainingRun) -> list:
    return [r.get("step") for r in run.records()]


def test_resume_cuts_the_log_exactly_at_the_checkpoint_step(tmp_path):
    run = TrainingRun(tmp_path, warn=None)
    save_step(tmp_path, 4, {"w": torch.full((2,), 4.0)}, {})
    lines = [json.dumps({"event": "start"})] + [json.dumps({"step": k, "loss": 1.0 / k}) for k in range(1, 8)]
    lines.append('{"step": 8, "lo')  # the line a kill cut in half
    lines.append(json.dumps({"step": 4, "event": "final"}))
    _write_log(run, lines)
    seen = []
    assert run.resume(lambda loaded: seen.append((loaded.step, loaded.tensors["w"].tolist()))) == 4
    assert seen == [(4, [4.0, 4.0])]
    assert _steps(run) == [None, 1, 2, 3, 4]  # the start event, steps 1..4; no step 5+, no cut line, no final
    assert run.log_path.read_text().splitlines()[1:] == lines[1:5]  # kept lines are byte-identical


def test_a_zero_based_log_keeps_the_steps_the_checkpoint_covers(tmp_path):
    # DreamFusion logs the index of the step taken (0 first); a checkpoint at step_count 4 covers indices 0..3
    run = TrainingRun(tmp_path, log_step_is_index=True, warn=None)
    _write_log(run, [json.dumps({"step": k}) for k in range(7)])
    assert [r["step"] for r in run.truncate_log(4)] == [0, 1, 2, 3]
    assert _steps(run) == [0, 1, 2, 3]
    assert run.truncate_log(0) == [] and run.log_path.read_text() == ""


def test_resume_without_a_checkpoint_starts_at_zero_and_restores_nothing(tmp_path):
    run = TrainingRun(tmp_path, warn=None)
    _write_log(run, [json.dumps({"event": "start"}), json.dumps({"step": 1})])
    called = []
    assert run.resume(called.append) == 0
    assert called == [] and _steps(run) == [None]


@pytest.mark.parametrize(("every", "total", "due"), [(3, 10, [3, 6, 9, 10]), (0, 10, [10]), (5, 10, [5, 10])])
def test_checkpoint_cadence(tmp_path, every, total, due):
    run = TrainingRun(tmp_path, checkpoint_every=every, total_steps=total)
    saved = []
    for step in range(1, total + 1):
        run.maybe_checkpoint(step, lambda step=step: saved.append(step))
    assert saved == due
    assert [s for s in range(1, total + 1) if run.checkpoint_due(s)] == due


class _Counter:
    """A toy trainer: a random walk whose RNG state is part of the checkpoint, so resuming must restore it."""

    def __init__(self):
        self.step, self.x, self.gen = 0, torch.zeros(3), torch.Generator().manual_seed(7)

    def train_step(self) -> dict:
        self.x = self.x + torch.randn(3, generator=self.gen)
        self.step += 1
        return {"step": self.step, "loss": float(self.x.square().sum())}

    def save(self, run_dir):
        return save_step(run_dir, self.step, {"x": self.x, "rng": self.gen.get_state()}, {})

    def restore(self, loaded) -> None:
        self.x, self.step = loaded.tensors["x"], loaded.step
        self.gen.set_state(loaded.tensors["rng"])


class _Kill(Exception):
    pass


def _train(run_dir, total: int, kill_after_log_of: int | None = None) -> _Counter:
    run = TrainingRun(run_dir, checkpoint_every=3, total_steps=total, warn=None)
    trainer = _Counter()
    run.resume(trainer.restore)
    while trainer.step < total:
        record = trainer.train_step()
        run.log(record)
        if record["step"] == kill_after_log_of:
            raise _Kill  # logged, not yet checkpointed
        run.maybe_checkpoint(trainer.step, lambda: trainer.save(run_dir))
    return trainer


def test_a_kill_between_log_and_checkpoint_loses_nothing_and_repeats_nothing(tmp_path):
    straight = _train(tmp_path / "straight", 10)
    with pytest.raises(_Kill):
        _train(tmp_path / "killed", 10, kill_after_log_of=5)  # log holds steps 1..5, the checkpoint step 3
    assert latest_step(tmp_path / "killed") == 3 and len(TrainingRun(tmp_path / "killed").records()) == 5
    with pytest.raises(_Kill):
        _train(tmp_path / "killed", 10, kill_after_log_of=6)  # a kill exactly at a checkpoint step, before the save
    resumed = _train(tmp_path / "killed", 10)
    assert torch.equal(resumed.x, straight.x)
    a = (tmp_path / "straight" / "log.jsonl").read_text()
    b = (tmp_path / "killed" / "log.jsonl").read_text()
    assert a == b and len(a.splitlines()) == 10


def test_config_round_trip_and_clear_errors(tmp_path):
    run = TrainingRun(tmp_path / "run")
    assert not run.exists()
    with pytest.raises(FileNotFoundError, match="--resume needs a work folder"):
        run.read_config()
    run.write_config({"lr": 0.01, "data": ["a", "b"]})
    assert run.exists() and run.read_config() == {"lr": 0.01, "data": ["a", "b"]}
    (run.dir / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        run.read_config()
    (run.dir / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a run configuration"):
        run.read_config()
    other = TrainingRun(tmp_path / "other")
    save_step(other.dir, 1, {"w": torch.zeros(1)}, {})
    assert other.exists()  # a checkpoint without a config also counts as a run


def test_a_non_main_rank_writes_nothing(tmp_path):
    run = TrainingRun(tmp_path / "run", checkpoint_every=1, is_main=False)
    run.write_config({"a": 1})
    run.log({"step": 1, "loss_G": 1.0})
    assert run.plot([{"step": 1, "loss_G": 1.0}]) is None
    assert not (tmp_path / "run").exists()


def test_plot_draws_one_panel_per_logged_key_from_the_log(tmp_path):
    run = TrainingRun(tmp_path)
    for k in range(1, 6):
        run.log({"step": k, "loss_G": 1.0 / k, "loss_D": float(k)})
    path = run.plot()
    image = Image.open(path)
    assert path == tmp_path / "losses.png" and image.size == (640, 2 * 200)  # loss_G and loss_D panels only
    # each panel holds its key's curve from the log: loss_G = 1 / k falls (blue, top), loss_D = k rises (red, below)
    px = np.asarray(image.convert("RGB")).astype(int)
    for panel, colour, falls in ((0, (31, 119, 180), True), (1, (214, 39, 40), False)):
        ys, xs = np.nonzero((px[panel * 200 : (panel + 1) * 200] == colour).all(-1))
        assert len(xs) > 100, (panel, len(xs))  # a line across the panel, not a dot
        left, right = ys[xs == xs.min()].mean(), ys[xs == xs.max()].mean()
        assert (left < right) if falls else (left > right), (panel, left, right)  # image rows grow downwards
    path = run.plot(keys=("loss_D",), name="d.png")
    assert Image.open(path).size == (640, 200)


def test_the_features_trainer_resumes_bit_identically(tmp_path):
    from tristudio.core.metrics import smallworld

    imgs = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    smallworld.train_small_world_extractor(imgs, tmp_path / "straight", steps=4, batch=4)
    smallworld.train_small_world_extractor(imgs, tmp_path / "split", steps=2, batch=4, checkpoint_every=2)
    smallworld.train_small_world_extractor(imgs, tmp_path / "split", steps=4, batch=4, resume=True)
    a, b = (smallworld.load_small_world_extractor(tmp_path / p).state_dict() for p in ("straight", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [TrainingRun(tmp_path / p).records() for p in ("straight", "split")]
    assert [r["step"] for r in logs[0]] == [1, 4] and [r["step"] for r in logs[1]] == [1, 2, 4]  # 2: run 1's last
    assert logs[1][0] == logs[0][0] and logs[1][-1] == logs[0][-1]  # same losses, bit for bit
    assert (tmp_path / "split" / "losses.png").is_file()
