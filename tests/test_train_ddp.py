"""Two gloo processes on a split batch take the same G and D step as one process on the whole batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tristudio.core.eg3d import loss as L
from tristudio.core.eg3d.ddp import DistInfo, init_distributed
from tristudio.core.eg3d.train import TrainConfig, Trainer

BATCH = 8  # 4 per rank: one minibatch-stddev group of 4 on each rank, two strided groups in one process


class _Labels:
    """A dataset stand-in: the trainer only needs labels and the resolution when the step inputs are given."""

    resolution = 32

    def __init__(self, n=16):
        from tristudio.core.worlds.sampling import head_cameras

        self.labels = head_cameras(list(range(n))).label()

    def __len__(self):
        return len(self.labels)


def _config() -> TrainConfig:
    # exact arithmetic: const synthesis noise, mid-interval / fixed-quantile ray samples; every phase runs at step 0
    loss = {"noise_mode": "const", "deterministic_render": True, "density_reg_points": 64}
    return TrainConfig(preset="tiny", batch=BATCH, seed=3, out="", loss=loss)


def _inputs(trainer: Trainer) -> L.StepInputs:
    g = torch.Generator().manual_seed(11)
    real = torch.rand(BATCH, 3, 32, 32, generator=g) * 2 - 1
    idx = torch.randint(len(trainer.labels), (BATCH,), generator=g)
    return L.draw_step_inputs(g, real, trainer.labels[idx], trainer.labels, trainer.G.z_dim, trainer.lcfg)


def _state(trainer: Trainer) -> dict:
    return {
        **{f"G.{k}": v.clone() for k, v in trainer.G.state_dict().items()},
        **{f"D.{k}": v.clone() for k, v in trainer.D.state_dict().items()},
    }


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    trainer = Trainer(_config(), _Labels(), info)
    stats = trainer.step(_inputs(trainer).shard(rank, world))
    if rank == 0:
        torch.save({"state": _state(trainer), "stats": stats}, out)
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_doubled_batch(tmp_path):
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    two = torch.load(out)

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(_config(), _Labels(), DistInfo())
        before = _state(trainer)
        stats = trainer.step(_inputs(trainer))
        one = _state(trainer)
    finally:
        torch.set_num_threads(n)

    assert set(stats) == set(two["stats"])
    assert {"loss_G", "loss_density", "loss_D", "loss_r1"} <= set(stats)  # every phase ran
    for k in ("loss_G", "loss_D", "loss_r1", "loss_density"):
        assert abs(stats[k] - two["stats"][k]) < 1e-5, k
    moved = 0
    for k, v in one.items():
        if not v.is_floating_point():
            continue
        torch.testing.assert_close(two["state"][k], v, atol=1e-5, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
        moved += int(not torch.equal(v, before[k]))
    assert moved > 20  # the step changed the weights (so equality is not vacuous)
