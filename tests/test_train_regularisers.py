"""The lazy regularisers as the Trainer applies them: the gradient of the R1 phase on D and of the density phase on G
equal interval x (their formula)'s gradient, computed here directly from the networks (not through core/eg3d/loss.py).
"""

from __future__ import annotations

import pytest
import torch
from eg3d_trainer_fixtures import HeadLabels, assert_grads_close, record_optimizer_steps

from tristudio.core.eg3d import loss as L
from tristudio.core.eg3d.ddp import DistInfo
from tristudio.core.eg3d.train import TrainConfig, Trainer

GAMMA, R1_EVERY = 0.7, 3
DENSITY, DENSITY_EVERY, P_DIST = 0.6, 5, 0.01


@pytest.fixture(scope="module")
def stepped():
    """One Trainer step 0 (every phase runs) with recorded gradients, and its inputs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    loss = {
        "noise_mode": "const",
        "deterministic_render": True,
        "density_reg_points": 32,
        "r1_gamma": GAMMA,
        "r1_interval": R1_EVERY,
        "density_reg": DENSITY,
        "density_reg_interval": DENSITY_EVERY,
        "density_reg_p_dist": P_DIST,
        "blur_init_sigma": 0.0,  # D sees the images as they are: the direct computation below needs no blur
    }
    trainer = Trainer(TrainConfig(preset="tiny", batch=4, seed=5, loss=loss), HeadLabels(12), DistInfo())
    g = torch.Generator().manual_seed(2)
    real = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    inp = L.draw_step_inputs(g, real, trainer.labels[[0, 3, 5, 7]], trainer.labels, trainer.G.z_dim, trainer.lcfg)
    with pytest.MonkeyPatch.context() as mp:
        records = record_optimizer_steps(trainer, mp)
        stats = trainer.step(inp)
    torch.set_num_threads(n)
    assert {"loss_r1", "loss_density"} <= set(stats)
    assert len(records["G"]) == 2 and len(records["D"]) == 2  # main + regulariser phase for each network
    return trainer, inp, records


def test_r1_phase_gradient_is_interval_times_half_gamma_times_mean_penalty_gradient(stepped):
    trainer, inp, records = stepped
    rec = records["D"][1]  # the R1 phase
    D = rec["net"].requires_grad_(True)
    nrr = trainer.G_ema.neural_rendering_resolution
    image = inp.real_img.clone().requires_grad_(True)
    raw_target = torch.nn.functional.interpolate(
        inp.real_img, size=(nrr, nrr), mode="bilinear", align_corners=False, antialias=True
    )
    raw = raw_target.clone().requires_grad_(True)
    logits = D({"image": image, "image_raw": raw}, inp.real_c)
    g_img, g_raw = torch.autograd.grad(logits.sum(), [image, raw], create_graph=True)
    penalty = g_img.square().flatten(1).sum(1) + g_raw.square().flatten(1).sum(1)  # (n,)
    target = R1_EVERY * GAMMA / 2 * penalty.mean()
    params = dict(D.named_parameters())
    grads = torch.autograd.grad(target, list(params.values()), allow_unused=True)
    expect = {k: g for k, g in zip(params, grads, strict=True) if g is not None}
    assert assert_grads_close(rec["grads"], expect) > 5


def test_density_phase_gradient_is_interval_times_density_reg_gradient(stepped):
    trainer, inp, records = stepped
    rec = records["G"][1]  # the density-regularisation phase
    G = rec["net"].requires_grad_(True)
    ws = G.mapping(inp.gen_z, inp.gen_c_cond)
    p = inp.density_points
    q = p + P_DIST * inp.density_offsets
    sigma_p = G.sample_mixed(p, torch.zeros_like(p), ws, noise_mode="const")["sigma"]
    sigma_q = G.sample_mixed(q, torch.zeros_like(q), ws, noise_mode="const")["sigma"]
    target = DENSITY_EVERY * DENSITY * (sigma_p - sigma_q).abs().mean()
    params = dict(G.named_parameters())
    grads = torch.autograd.grad(target, list(params.values()), allow_unused=True)
    expect = {k: g for k, g in zip(params, grads, strict=True) if g is not None}
    assert assert_grads_close(rec["grads"], expect) > 5
