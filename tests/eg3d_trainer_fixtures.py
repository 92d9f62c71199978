"""Test helpers for the EG3D Trainer: a labels-only dataset stand-in, and recording the gradients each optimiser step
sees, before the step."""

from __future__ import annotations

import copy

import torch


class HeadLabels:
    """A dataset stand-in: the trainer only needs labels (n, 25: the heads world's camera labels for seeds 0..n-1) and
    the resolution when the step inputs are given."""

    resolution = 32

    def __init__(self, n: int):
        from tristudio.core.worlds.camera_sampling import head_cameras

        self.labels = head_cameras(list(range(n))).label()

    def __len__(self):
        return len(self.labels)


def record_optimizer_steps(trainer, monkeypatch) -> dict[str, list[dict]]:
    """Wrap trainer.opt_G.step and trainer.opt_D.step: each call appends {"grads": {name: grad}, "net": a copy of the
    network as it was when the gradients were taken} to records["G"] / records["D"], then runs the real step."""
    records: dict[str, list[dict]] = {"G": [], "D": []}
    for key, net, opt in (("G", trainer.G, trainer.opt_G), ("D", trainer.D, trainer.opt_D)):
        real_step = opt.step

        def step(*args, _key=key, _net=net, _real=real_step, **kwargs):
            grads = {n: p.grad.detach().clone() for n, p in _net.named_parameters() if p.grad is not None}
            records[_key].append({"grads": grads, "net": copy.deepcopy(_net)})
            return _real(*args, **kwargs)

        monkeypatch.setattr(opt, "step", step)
    return records


def assert_grads_close(got: dict[str, torch.Tensor], expect: dict[str, torch.Tensor], rtol=1e-4) -> int:
    """Each gradient within rtol of the reference's largest entry (a parameter without a gradient on one side counts
    as a zero gradient: an all-reduce fills those in). Returns how many reference gradients are non-zero."""
    nonzero = 0
    for k in sorted(set(got) | set(expect)):
        e = expect.get(k, torch.zeros_like(got.get(k, torch.zeros(()))))
        g = got.get(k, torch.zeros_like(e))
        scale = float(e.abs().max())
        torch.testing.assert_close(g, e, rtol=0, atol=rtol * scale + 1e-12, msg=lambda m, k=k: f"{k}: {m}")
        nonzero += int(scale > 0)
    return nonzero
