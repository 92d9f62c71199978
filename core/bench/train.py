"""EG3D training throughput: images/s of full training steps (Gmain, Greg, Dmain, Dreg amortised, EMA) per preset,
against a roofline: the step's matmul/conv FLOPs (forward + backward, counted by torch's FlopCounterMode on one
step) and the machine's measured dense-GEMM rate give the images/s the step would reach if it ran at GEMM speed;
`efficiency` = measured / roofline. (Sampling, grid_sample and the optimiser are memory-bound and not counted, so
efficiency well below 1 says where the time goes: not in the FLOPs.)

Presets: tiny, small (the shipped model) and medium (the 128 px model) at both stages of its two-stage schedule
(32 px then 64 px neural rendering; 2 timed steps each on a CPU)."""

from __future__ import annotations

import time

import torch

from .common import resolve_device

TITLE = "EG3D training speed (images/s, one process)"


class _Synthetic:
    def __init__(self, res: int, n: int = 16):
        from ..worlds.camera_sampling import head_cameras

        self.resolution = res
        self.labels = head_cameras(list(range(n))).label()
        g = torch.Generator().manual_seed(0)
        self.imgs = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)

    def __len__(self):
        return len(self.imgs)

    def image(self, i):
        return self.imgs[i]


def gemm_gflops(dev: torch.device, n: int = 1024, repeats: int = 5) -> float:
    """Achieved float32 GEMM rate (GFLOP/s) of an n x n x n matmul: the practical compute roof."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    a @ b
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def step_flops(trainer) -> float:
    """Matmul/conv FLOPs (forward + backward) of one training step (the trainer advances by one step)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.step()
    return float(counter.get_total_flops())


def run(device: str = "auto", quick: bool = False) -> list[dict]:
    from ..eg3d.ddp import DistInfo
    from ..eg3d.presets import preset
    from ..eg3d.train import TrainConfig, Trainer

    dev = resolve_device(device)
    rows = []
    roof = gemm_gflops(dev)
    cpu = dev.type == "cpu"
    runs = [("tiny", 4, None), ("small", 4 if cpu else 16, None)]
    if not quick:
        runs += [("medium", 4 if cpu else 16, 32), ("medium", 4 if cpu else 16, 64)]
    for name, batch, nrr in runs:
        res = preset(name)["img_resolution"]
        # lazy regularisation every 4 (density) / 16 (R1) steps: 16 timed steps amortise both (2 when quick)
        steps = 2 if quick or (cpu and name == "medium") else 16
        loss = {} if nrr is None else {"neural_rendering_resolution_initial": nrr}
        cfg = TrainConfig(preset=name, batch=batch, seed=0, loss=loss)
        trainer = Trainer(cfg, _Synthetic(res), DistInfo(device=dev))
        trainer.step()  # warm-up (includes both regularisers at step 0)
        flops = step_flops(trainer)  # a plain step (no lazy regulariser at step 1)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        ips = batch * steps / dt
        roofline = roof * 1e9 / (flops / batch)
        rows.append(
            {
                "preset": name,
                "neural_res": int(trainer.G.neural_rendering_resolution if nrr is None else nrr),
                "device": str(dev),
                "batch": batch,
                "steps": steps,
                "sec_per_step": dt / steps,
                "images_per_s": ips,
                "gflop_per_image": flops / batch / 1e9,
                "gemm_gflops": roof,
                "roofline_images_per_s": roofline,
                "efficiency": ips / roofline,
            }
        )
    return rows
