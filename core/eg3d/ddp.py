"""Multi-process data parallelism for EG3D training (torchrun; gloo on CPU, nccl on CUDA).

Every rank holds full copies of G, D, G_ema and their optimisers, draws the *same* global batch of random inputs and
trains on its strided share (samples rank, rank + K, ...). After each backward the gradients are averaged across ranks
with one all-reduce per network (`all_reduce_grads`), so every rank takes the same Adam step as one process on the
whole batch (the loss is a per-sample mean; minibatch-stddev groups are strided, so they survive the split).

Why not the `DistributedDataParallel` wrapper: one training phase calls a network several times before one backward
(G: mapping + synthesis + sample_mixed; D: fakes and reals), R1 needs `autograd.grad(create_graph=True)` (double
backward, which DDP's reducer does not support), and lazy regularisation skips phases on some steps; averaging
gradients explicitly after the backward is the same arithmetic with none of those restrictions (StyleGAN2-ADA and EG3D
do the same).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistInfo",
    "init_distributed",
    "all_reduce_grads",
    "all_reduce_mean",
    "average_buffers",
    "broadcast_module",
    "barrier",
]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and join the process group.

    device 'auto': cuda:LOCAL_RANK when CUDA is available, else CPU. Backend: nccl on CUDA, gloo on CPU.
    A single process (no WORLD_SIZE or WORLD_SIZE=1) needs no process group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train: --device cuda asked for, but torch sees no CUDA device")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def _grads(params: list[nn.Parameter]) -> list[Tensor]:
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


def all_reduce_grads(module: nn.Module, world_size: int) -> None:
    """Average the gradients of `module`'s trainable parameters over ranks (missing grads count as zeros)."""
    if world_size <= 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([g.reshape(-1) for g in _grads(params)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def all_reduce_mean(values: Tensor, world_size: int) -> Tensor:
    """Mean of a tensor over ranks (a copy; the input is unchanged)."""
    if world_size <= 1:
        return values.detach().clone()
    v = values.detach().clone()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / world_size


def average_buffers(module: nn.Module, world_size: int) -> None:
    """Average floating-point buffers over ranks (the mapping's running w_avg: its update is linear in the batch mean,
    so the average of the per-rank updates equals the update on the whole batch)."""
    if world_size <= 1:
        return
    for b in module.buffers():
        if b.is_floating_point():
            dist.all_reduce(b.data, op=dist.ReduceOp.SUM)
            b.data /= world_size


def broadcast_module(module: nn.Module, world_size: int, src: int = 0) -> None:
    """Copy rank `src`'s parameters and buffers to every rank."""
    if world_size <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()
