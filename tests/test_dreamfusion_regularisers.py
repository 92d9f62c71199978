"""Schedules (timestep annealing, learning-rate decay) and geometry regularisers against their closed forms
(core/dreamfusion/schedules.py, regularisers.py), and that a DreamFusion step applies them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
from tristudio.core.dreamfusion.regularisers import entropy_loss, orientation_loss, sparsity_loss
from tristudio.core.dreamfusion.schedules import annealed_t_range, lr_factor, ramp
from tristudio.core.priors import load_prior


@pytest.fixture(scope="module")
def prior(tiny_prior_dir):
    return load_prior(tiny_prior_dir, device="cpu")


def test_ramp_and_annealed_t_range_at_step_k():
    assert ramp(0, 0.98, 0.5, 800) == 0.98
    assert ramp(200, 0.98, 0.5, 800) == pytest.approx(0.98 - 0.48 * 0.25)
    assert ramp(800, 0.98, 0.5, 800) == ramp(5000, 0.98, 0.5, 800) == 0.5
    assert ramp(3, 1.0, 2.0, 0) == 2.0  # no ramp: the end value
    for k in (0, 100, 399, 400, 1000, 2000):
        lo, hi = annealed_t_range(k, (0.02, 0.98), 0.5, 400)
        assert lo == 0.02 and hi == pytest.approx(0.98 - 0.48 * min(k / 400, 1))
    assert annealed_t_range(123, (0.02, 0.98), 0.5, 0) == (0.02, 0.98)  # annealing off
    assert annealed_t_range(10_000, (0.3, 0.98), 0.1, 100) == (0.3, 0.3)  # t_max never below t_min


def test_lr_factor_is_exponential_to_its_final_ratio():
    assert lr_factor(0, 0.1, 1000) == 1.0
    assert lr_factor(500, 0.1, 1000) == pytest.approx(0.1**0.5)
    assert lr_factor(1000, 0.1, 1000) == lr_factor(3000, 0.1, 1000) == pytest.approx(0.1)
    assert lr_factor(700, 0.1, 0) == 1.0
    # held to step 200, then down to 1% at step 400 (the small-world profile)
    assert lr_factor(0, 0.01, 400, 200) == lr_factor(200, 0.01, 400, 200) == 1.0
    assert lr_factor(300, 0.01, 400, 200) == pytest.approx(0.1)
    assert lr_factor(400, 0.01, 400, 200) == lr_factor(2000, 0.01, 400, 200) == pytest.approx(0.01)
    assert lr_factor(500, 0.01, 400, 400) == 1.0  # no decay window


def test_orientation_penalty_for_known_normals_and_weights():
    # 4 rays: d = +z everywhere; normals towards the camera (-z), away (+z), sideways, and 60 deg away
    d = torch.tensor([0.0, 0.0, 1.0]).expand(1, 4, 3)
    n = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, math.sin(math.pi / 6), 0.5]])
    n = F.normalize(n, dim=-1)[None]
    o = torch.tensor([0.9, 0.5, 1.0, 0.8]).reshape(1, 4, 1)
    cos60 = n[0, 3, 2]  # n . d of the last ray
    expected = (0.9 * 0 + 0.5 * 1.0**2 + 1.0 * 0 + 0.8 * float(cos60) ** 2) / 4
    o_req, n_req = o.clone().requires_grad_(True), n.clone().requires_grad_(True)
    val = orientation_loss(o_req, n_req, d)
    assert float(val.detach()) == pytest.approx(expected, rel=1e-6)
    val.backward()
    assert o_req.grad is None  # the opacity weight carries no gradient
    n_dot_d = (n * d).sum(-1, keepdim=True)
    torch.testing.assert_close(n_req.grad, 2 * o * n_dot_d.clamp_min(0) * d / 4)  # d/dn of o relu(n.d)^2 / 4


def test_sparsity_and_entropy_penalties():
    o = torch.tensor([0.0, 0.3, 1.0]).reshape(1, 3, 1)
    assert float(sparsity_loss(o)) == pytest.approx((0.1 + math.sqrt(0.09 + 0.01) + math.sqrt(1.01)) / 3)
    o = torch.tensor([0.5, 0.25]).reshape(1, 2, 1)
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert float(entropy_loss(o)) == pytest.approx((h(0.5) + h(0.25)) / 2)
    # sparsity's gradient pushes opacity down, most where it is largest (o / sqrt(o^2 + 0.01))
    o = torch.tensor([0.05, 0.5]).reshape(1, 2, 1).requires_grad_(True)
    sparsity_loss(o).backward()
    g = o.grad.flatten()
    assert (g > 0).all() and g[1] > g[0]
    torch.testing.assert_close(g, torch.tensor([0.05, 0.5]) / torch.tensor([0.0125, 0.26]).sqrt() / 2)


def test_a_step_uses_the_scheduled_timesteps_and_learning_rate(prior):
    cfg = DreamFusionConfig(
        prompt="a cube",
        steps=40,
        resolution=16,
        grid_resolution=16,
        samples=8,
        t_range=(0.02, 0.98),
        t_max_final=0.3,
        t_anneal_steps=10,
        lr=0.02,
        lr_final_ratio=0.1,
        lr_decay_steps=20,
        lr_decay_start=0,
        lambda_sparsity=1.0,
    )
    df = DreamFusion(cfg, prior)
    T = prior.num_train_timesteps
    seen = []
    for k in range(25):
        m = df.step()
        t_lo, t_hi = annealed_t_range(k, (0.02, 0.98), 0.3, 10)
        assert m["t_max"] == pytest.approx(t_hi)
        assert int(t_lo * T) <= m["t"] <= int(t_hi * T)
        assert m["lr"] == pytest.approx(0.02 * 0.1 ** min(k / 20, 1))
        assert df.optimizer.param_groups[0]["lr"] == pytest.approx(m["lr"])
        seen.append(m["t"])
    assert max(seen[10:]) <= int(0.3 * T)  # after the annealing, only small noise levels
    assert "sparsity" in m and m["sparsity"] > 0


def test_old_checkpoint_configs_keep_their_schedule():
    """A config saved before the schedules existed resumes as it ran: no annealing, no decay, no sparsity."""
    old = {"prompt": "a cube", "steps": 100}
    cfg = DreamFusionConfig.from_dict(old)
    assert (cfg.t_anneal_steps, cfg.lr_decay_steps, cfg.lr_decay_start, cfg.lambda_sparsity) == (0, 0, 0, 0.0)


def test_the_small_world_profile_decays_the_lr(prior):
    df = DreamFusion(DreamFusionConfig(prompt="a cube", resolution=16, grid_resolution=16, samples=8), prior)
    assert [df.schedule(k)[1] for k in (0, 200, 300, 400, 500, 1500)] == pytest.approx(
        [1e-2, 1e-2, 1e-3, 1e-4, 1e-5, 1e-5]
    )
