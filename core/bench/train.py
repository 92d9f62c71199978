"""EG3D training throughput: images/s of full training steps (Gmain, Greg, Dmain, Dreg amortised, EMA) per preset."""

from __future__ import annotations

import time

import torch

TITLE = "EG3D training speed (images/s, one process)"


class _Synthetic:
    def __init__(self, res: int, n: int = 16):
        from ..worlds.sampling import head_cameras

        self.resolution = res
        self.labels = head_cameras(list(range(n))).label()
        g = torch.Generator().manual_seed(0)
        self.imgs = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)

    def __len__(self):
        return len(self.imgs)

    def image(self, i):
        return self.imgs[i]


def run(device: str = "auto", quick: bool = False) -> list[dict]:
    from ..eg3d.ddp import DistInfo
    from ..eg3d.presets import preset
    from ..eg3d.train import TrainConfig, Trainer

    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    rows = []
    for name, batch in (("tiny", 4), ("small", 4 if dev.type == "cpu" else 16)):
        res = preset(name)["img_resolution"]
        # lazy regularisation every 4 (density) / 16 (R1) steps: 16 timed steps amortise both (2 when quick)
        steps = 2 if quick else 16
        trainer = Trainer(TrainConfig(preset=name, batch=batch, seed=0), _Synthetic(res), DistInfo(device=dev))
        trainer.step()  # warm-up (includes both regularisers at step 0)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rows.append(
            {
                "preset": name,
                "device": str(dev),
                "batch": batch,
                "steps": steps,
                "sec_per_step": dt / steps,
                "images_per_s": batch * steps / dt,
            }
        )
    return rows
