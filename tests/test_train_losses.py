"""EG3D losses and schedules against hand-computed values: R1, density regularisation, EMA, Adam correction, GPC."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tristudio.core.eg3d import loss as L


class QuadraticD(nn.Module):
    """D(x) = 0.5 |image|^2 * a + 0.5 |raw|^2 * b per sample: grad_image = a * image, grad_raw = b * raw."""

    def __init__(self, a=1.0, b=2.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, img, c, update_emas=False):
        return (
            0.5 * self.a * img["image"].square().sum((1, 2, 3))
            + 0.5 * self.b * img["image_raw"].square().sum((1, 2, 3))
        )[:, None] + c[:, :1] * 0


def test_r1_penalty_equals_hand_computed_gradient_norm():
    g = torch.Generator().manual_seed(0)
    image, raw = torch.randn(3, 3, 8, 8, generator=g), torch.randn(3, 3, 4, 4, generator=g)
    c = torch.randn(3, 25, generator=g)
    D = QuadraticD(a=1.5, b=0.5)
    pen = L.r1_penalty(D, {"image": image, "image_raw": raw}, c)
    expect = (1.5**2) * image.square().sum((1, 2, 3)) + (0.5**2) * raw.square().sum((1, 2, 3))
    torch.testing.assert_close(pen, expect)
    # the loss: gamma / 2 * mean, with the raw target = the real image resized to the neural resolution
    cfg = L.LossConfig(r1_gamma=4.0, blur_fade_kimg=0)
    inp = L.StepInputs(image, c, torch.zeros(3, 4), c, c, torch.zeros(3, 1, 3), torch.zeros(3, 1, 3))
    raw_target = F.interpolate(image, size=(4, 4), mode="bilinear", align_corners=False, antialias=True)
    expect_loss = 2.0 * ((1.5**2) * image.square().sum((1, 2, 3)) + 0.25 * raw_target.square().sum((1, 2, 3))).mean()
    torch.testing.assert_close(L.r1_loss(D, L.StepContext(inp, cfg, nrr=4)), expect_loss)
    # it is differentiable w.r.t. D's parameters (double backward)
    Dp = QuadraticD()
    Dp.a = nn.Parameter(torch.tensor(1.5))
    L.r1_penalty(Dp, {"image": image, "image_raw": raw}, c).sum().backward()
    torch.testing.assert_close(Dp.a.grad, 2 * 1.5 * image.square().sum())


class LinearDensityG(nn.Module):
    """A stand-in generator whose raw density is linear in space: sigma(p) = <a, p> + 1."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([0.5, -2.0, 3.0]))

    def mapping(self, z, c, update_emas=False):
        return z[:, None, :]

    def sample_mixed(self, coords, dirs, ws, noise_mode="const"):
        return {"sigma": (coords @ self.a)[..., None] + 1.0, "rgb": coords}


def test_density_regularisation_equals_its_formula():
    g = torch.Generator().manual_seed(1)
    cfg = L.LossConfig(density_reg=0.25, density_reg_p_dist=0.004, density_reg_points=50)
    labels = torch.randn(10, 25, generator=g)
    inp = L.draw_step_inputs(g, torch.zeros(2, 3, 8, 8), labels[:2], labels, 4, cfg)
    assert inp.density_points.shape == (2, 50, 3)
    assert inp.density_points.min() >= -1 and inp.density_points.max() <= 1
    G = LinearDensityG()
    got = L.density_reg_loss(G, L.StepContext(inp, cfg, nrr=4))
    # |sigma(p) - sigma(p + d * eps)| = d |<a, eps>|
    expect = 0.25 * (0.004 * (inp.density_offsets @ G.a.detach()).abs()).mean()
    torch.testing.assert_close(got, expect)
    got.backward()
    assert G.a.grad is not None and G.a.grad.abs().sum() > 0


def test_nonsaturating_losses():
    class ConstD(nn.Module):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, img, c, update_emas=False):
            return torch.full((img["image"].shape[0], 1), self.v)

    class FakeG(nn.Module):
        z_dim = 4

        def mapping(self, z, c, update_emas=False):
            return z[:, None]

        def synthesis(self, ws, c, neural_rendering_resolution=None, **kw):
            n = ws.shape[0]
            return {"image": torch.zeros(n, 3, 8, 8), "image_raw": torch.zeros(n, 3, 4, 4)}

    cfg = L.LossConfig(blur_fade_kimg=0)
    labels = torch.randn(4, 25)
    inp = L.draw_step_inputs(torch.Generator().manual_seed(0), torch.zeros(4, 3, 8, 8), labels, labels, 4, cfg)
    step = L.StepContext(inp, cfg, nrr=4)
    assert math.isclose(float(L.generator_loss(FakeG(), ConstD(0.7), step)), math.log1p(math.exp(-0.7)), rel_tol=1e-6)
    d, _ = L.discriminator_loss(FakeG(), ConstD(0.7), step)
    assert math.isclose(float(d), math.log1p(math.exp(0.7)) + math.log1p(math.exp(-0.7)), rel_tol=1e-6)


def test_ema_update_formula():
    # rampup: ema_nimg = min(ema_kimg * 1000, cur_nimg * rampup)
    assert math.isclose(L.ema_beta(4, 100, 10.0, 0.05), 0.5 ** (4 / 5))
    assert math.isclose(L.ema_beta(4, 10**7, 10.0, 0.05), 0.5 ** (4 / 10000))
    assert math.isclose(L.ema_beta(4, 100, 10.0, None), 0.5 ** (4 / 10000))
    torch.manual_seed(0)
    G, G_ema = nn.Linear(3, 2), nn.Linear(3, 2)
    G.register_buffer("avg", torch.arange(3.0))
    G_ema.register_buffer("avg", torch.zeros(3))
    before = [p.detach().clone() for p in G_ema.parameters()]
    L.update_ema(G_ema, G, 0.9)
    for p_new, p_old, p in zip(G_ema.parameters(), before, G.parameters(), strict=True):
        torch.testing.assert_close(p_new, 0.9 * p_old + 0.1 * p.detach())
    assert torch.equal(G_ema.avg, G.avg)


def test_adam_lazy_regularisation_correction():
    p = [nn.Parameter(torch.zeros(2))]
    opt = L.make_adam(p, lr=0.002, betas=(0.0, 0.99), reg_interval=16)
    g = opt.param_groups[0]
    assert math.isclose(g["lr"], 0.002 * 16 / 17)
    assert g["betas"][0] == 0.0 and math.isclose(g["betas"][1], 0.99 ** (16 / 17))
    assert g["eps"] == 1e-8
    assert math.isclose(L.make_adam(p, lr=0.002, reg_interval=0).param_groups[0]["lr"], 0.002)


def test_gpc_swap_probability_and_schedules():
    labels = torch.randn(50, 25)
    g = torch.Generator().manual_seed(0)
    never = L.draw_step_inputs(
        g, torch.zeros(64, 3, 4, 4), labels[:1].expand(64, -1), labels, 4, L.LossConfig(gpc_reg_prob=0.0)
    )
    assert torch.equal(never.gen_c_cond, never.gen_c)
    always = L.draw_step_inputs(
        g, torch.zeros(64, 3, 4, 4), labels[:1].expand(64, -1), labels, 4, L.LossConfig(gpc_reg_prob=1.0)
    )
    assert (always.gen_c_cond != always.gen_c).any(dim=1).float().mean() > 0.9
    cfg = L.LossConfig(blur_init_sigma=10, blur_fade_kimg=200)
    assert L.blur_sigma_at(0, cfg) == 10 and L.blur_sigma_at(100_000, cfg) == 5 and L.blur_sigma_at(10**6, cfg) == 0
    x = torch.zeros(1, 1, 31, 31)
    x[0, 0, 15, 15] = 1
    y = L.blur(x, 2.0)
    assert y.shape == x.shape and math.isclose(float(y.sum()), 1.0, rel_tol=1e-5) and float(y.max()) < 0.2
    assert torch.equal(L.blur(x, 0.0), x)
    cfg = L.LossConfig(
        neural_rendering_resolution_initial=64,
        neural_rendering_resolution_final=128,
        neural_rendering_resolution_fade_kimg=1000,
    )
    assert L.neural_rendering_resolution_at(0, cfg, 32) == 64
    assert L.neural_rendering_resolution_at(500_000, cfg, 32) == 96
    assert L.neural_rendering_resolution_at(2_000_000, cfg, 32) == 128
