"""SDS / CSD / VSD gradients against their formulas (core/dreamfusion/guidance.py docstring), computed by hand from
direct UNet calls, for a pixel prior (z = 2x - 1: d/dx = 2 G / N) and the Stable-Diffusion latent layout (the gradient
goes through the VAE encoder: compare with torch.autograd.grad of sum(G * z) / N)."""

from __future__ import annotations

import pytest
import torch

from tristudio.core.dreamfusion.guidance import CSD, SDS, VSD
from tristudio.core.priors import load_prior
from tristudio.core.priors.testing import build_tiny_pixel_prior, build_tiny_sd


@pytest.fixture(scope="module")
def pixel_prior(tiny_prior_dir):
    return load_prior(tiny_prior_dir, device="cpu")


@pytest.fixture(scope="module")
def sd_prior(tmp_path_factory):
    return load_prior(build_tiny_sd(tmp_path_factory.mktemp("sd") / "prior"), device="cpu")


def _unet(prior, z_t, t, emb):
    return prior.unet(z_t, t, encoder_hidden_states=emb).sample[:, : prior.latent_channels]


def _hand_gradient(method, prior, z, t, noise, emb, scale, cams=None):
    """G = w(t) * (method's score difference), w(t) = 1 - abar_t, UNet outputs computed here directly."""
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * z + (1 - a).sqrt() * noise
    with torch.no_grad():
        eps_u = _unet(prior, z_t, t, emb.uncond)
        eps_c = _unet(prior, z_t, t, emb.cond)
        if method == "sds":
            diff = eps_u + scale * (eps_c - eps_u) - noise
        elif method == "csd":
            diff = scale * (eps_c - eps_u)
        else:
            eps_l = cams  # the LoRA's prediction, passed in
            diff = eps_u + scale * (eps_c - eps_u) - eps_l
    return (1 - a) * diff


def _setup(prior, n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g).requires_grad_(True)
    t = torch.tensor([100, 600, 950][:n])
    return images, t, g


def _perturb_vsd(vsd: VSD):
    """Make the LoRA and the camera embedding non-trivial (at init both are exactly 'no change')."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in vsd.lora_params:
            p.add_(0.2 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("method", ["sds", "csd", "vsd"])
def test_pixel_prior_gradient_matches_formula(pixel_prior, method):
    prior = pixel_prior
    images, t, _ = _setup(prior, 2, prior.resolution)
    noise = torch.randn(2, 3, prior.resolution, prior.resolution, generator=torch.Generator().manual_seed(1))
    emb = prior.encode_prompt(["a red cube", "a blue sphere, back view"])
    cams = torch.randn(2, 16, generator=torch.Generator().manual_seed(2))
    scale = {"sds": 100.0, "csd": 10.0, "vsd": 7.5}[method]
    guide = {"sds": SDS, "csd": CSD, "vsd": VSD}[method](prior, guidance_scale=scale)
    eps_l = None
    if method == "vsd":
        _perturb_vsd(guide)
        a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
        z_t = a.sqrt() * (2 * images.detach() - 1) + (1 - a).sqrt() * noise
        with torch.no_grad():
            eps_l = guide.eps_lora(z_t, t, emb.cond, cams)
            assert (eps_l - _unet(prior, z_t, t, emb.cond)).abs().max() > 1e-3  # the LoRA/camera path is live
    out = guide(images, emb, torch.Generator().manual_seed(5), cameras=cams, t=t, noise=noise)
    out.loss.backward()
    G = _hand_gradient(method, prior, 2 * images.detach() - 1, t, noise, emb, scale, eps_l)
    # batched (2N) vs separate UNet calls differ by float rounding, amplified by the guidance scale
    tol = dict(rtol=1e-4, atol=2e-6 * scale)
    torch.testing.assert_close(out.grad, G, **tol)
    # d/dx of sum(G * (2x - 1)) / N = 2 G / N
    torch.testing.assert_close(images.grad, 2 * out.grad / 2, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(images.grad, 2 * G / 2, **tol)
    assert images.grad.abs().max() > 0
    if method == "vsd":
        guide.prior.unet.delete_adapters(guide.adapter_name)


@pytest.mark.parametrize("method", ["sds", "csd"])
def test_latent_prior_gradient_goes_through_the_vae(sd_prior, method):
    prior = sd_prior
    images, t, _ = _setup(prior, 1, prior.resolution)
    h = prior.resolution // prior.vae_scale_factor
    noise = torch.randn(1, 4, h, h, generator=torch.Generator().manual_seed(1))
    emb = prior.encode_prompt(["a red cube"])
    scale = 100.0 if method == "sds" else 10.0
    guide = (SDS if method == "sds" else CSD)(prior, guidance_scale=scale)
    out = guide(images, emb, torch.Generator().manual_seed(7), t=t, noise=noise)
    out.loss.backward()
    # the same posterior sample by hand: same generator seed
    x2 = images.detach().clone().requires_grad_(True)
    z = prior.encode_images(x2, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(z.detach(), out.latents.detach())
    G = _hand_gradient(method, prior, z.detach(), t, noise, emb, scale)
    torch.testing.assert_close(out.grad, G, rtol=1e-4, atol=2e-6 * scale)
    (expected,) = torch.autograd.grad((out.grad * z).sum() / 1, x2)  # through the VAE encoder
    torch.testing.assert_close(images.grad, expected, rtol=1e-4, atol=1e-7)
    assert expected.abs().max() > 0


def test_vsd_lora_step_reduces_its_loss_and_sds_timesteps_in_range(pixel_prior):
    prior = pixel_prior
    vsd = VSD(prior)
    try:
        g = torch.Generator().manual_seed(0)
        z = torch.rand(2, 3, prior.resolution, prior.resolution, generator=g) * 2 - 1
        emb = prior.encode_prompt(["a red cube"] * 2)
        cams = torch.randn(2, 16, generator=g)
        before = [p.detach().clone() for p in vsd.lora_params]
        vsd.lora_step(z, emb, cams, g)
        assert any((a != p).any() for a, p in zip(before, vsd.lora_params, strict=True))  # LoRA trained
        t = vsd.sample_t(1000, torch.Generator().manual_seed(1))
        assert int(t.min()) >= 20 and int(t.max()) <= 980
    finally:
        prior.unet.delete_adapters(vsd.adapter_name)


def test_vsd_lora_prediction_is_eps_for_a_v_prediction_prior(tmp_path):
    """At init the LoRA and camera embedding change nothing, so eps_lora must equal the prior's (converted) eps."""
    prior = load_prior(build_tiny_pixel_prior(tmp_path / "v", prediction_type="v_prediction"), device="cpu")
    vsd = VSD(prior)
    g = torch.Generator().manual_seed(0)
    z_t = torch.randn(2, 3, prior.resolution, prior.resolution, generator=g)
    t = torch.tensor([200, 800])
    cond = prior.encode_prompt(["a red cube"] * 2).cond
    with torch.no_grad():
        torch.testing.assert_close(
            vsd.eps_lora(z_t, t, cond, torch.randn(2, 16, generator=g)),
            prior.predict_noise(z_t, t, cond),
            rtol=1e-4,
            atol=1e-5,
        )


def test_csd_negative_prompt_term_matches_formula(pixel_prior):
    """G = w(t) [ s_c (eps_c - eps_u) - s_n (eps_neg - eps_u) ], every UNet output computed here directly.
    Scales are passed explicitly (the test does not depend on the method's default)."""
    prior = pixel_prior
    images, t, _ = _setup(prior, 2, prior.resolution, seed=4)
    noise = torch.randn(2, 3, prior.resolution, prior.resolution, generator=torch.Generator().manual_seed(6))
    emb = prior.encode_prompt(["a red cube", "a green torus"])
    emb.negative = prior.encode_prompt(["a blue sphere", "a yellow cone"]).cond
    s_c, s_n = 3.0, 1.7
    out = CSD(prior, guidance_scale=s_c, negative_scale=s_n)(
        images, emb, torch.Generator().manual_seed(0), t=t, noise=noise
    )
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * (2 * images.detach() - 1) + (1 - a).sqrt() * noise
    with torch.no_grad():
        eps_u = _unet(prior, z_t, t, emb.uncond)
        eps_c = _unet(prior, z_t, t, emb.cond)
        eps_n = _unet(prior, z_t, t, emb.negative)
    G = (1 - a) * (s_c * (eps_c - eps_u) - s_n * (eps_n - eps_u))
    torch.testing.assert_close(out.grad, G, rtol=1e-4, atol=1e-5)
    without = (1 - a) * s_c * (eps_c - eps_u)
    assert (G - without).abs().max() > 100 * 1e-5  # the negative term is a real part of the answer
    # a zero negative scale ignores the negative embedding
    plain = CSD(prior, guidance_scale=s_c, negative_scale=0.0)(
        images, emb, torch.Generator().manual_seed(0), t=t, noise=noise
    )
    torch.testing.assert_close(plain.grad, without, rtol=1e-4, atol=1e-5)


def test_vsd_converts_a_sample_prediction_to_eps(tmp_path):
    """A prior whose UNet predicts x0 ('sample'): eps = (z_t - sqrt(abar) x0) / sqrt(1 - abar), for the prior's own
    prediction and for VSD's LoRA prediction, and VSD's gradient is w(t) (eps_hat - eps_lora) with both converted."""
    prior = load_prior(build_tiny_pixel_prior(tmp_path / "x0", prediction_type="sample"), device="cpu")
    assert prior.prediction_type == "sample"
    scale = 4.0
    vsd = VSD(prior, guidance_scale=scale)
    _perturb_vsd(vsd)
    g = torch.Generator().manual_seed(0)
    n, r = 2, prior.resolution
    images = torch.rand(n, 3, r, r, generator=g)
    noise = torch.randn(n, 3, r, r, generator=g)
    cams = torch.randn(n, 16, generator=g)
    t = torch.tensor([150, 700])
    emb = prior.encode_prompt(["a red cube", "a blue torus"])
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * (2 * images - 1) + (1 - a).sqrt() * noise
    unet = prior.unet

    def to_eps(x0):
        return (z_t - a.sqrt() * x0) / (1 - a).sqrt()

    with torch.no_grad():
        eps_u = to_eps(_unet(prior, z_t, t, emb.uncond))
        eps_c = to_eps(_unet(prior, z_t, t, emb.cond))
        unet.enable_adapters()
        unet.class_embedding = vsd.camera_embedding
        try:
            x0_lora = unet(z_t, t, encoder_hidden_states=emb.cond, class_labels=cams).sample[:, :3]
        finally:
            unet.class_embedding = None
            unet.disable_adapters()
        eps_l = to_eps(x0_lora)
        torch.testing.assert_close(prior.predict_noise(z_t, t, emb.cond), eps_c, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(vsd.eps_lora(z_t, t, emb.cond, cams), eps_l, rtol=1e-4, atol=1e-4)
        assert (eps_l - eps_c).abs().max() > 1e-2  # the LoRA path is live
    try:
        out = vsd(images, emb, torch.Generator().manual_seed(1), cameras=cams, t=t, noise=noise)
        G = (1 - a) * (eps_u + scale * (eps_c - eps_u) - eps_l)
        torch.testing.assert_close(out.grad, G, rtol=1e-4, atol=1e-4)
    finally:
        unet.delete_adapters(vsd.adapter_name)


def test_a_vsd_run_is_a_function_of_its_seed(pixel_prior):
    """VSD's LoRA (and its camera embedding) are drawn from the run's seed, not the process's RNG: two objects with
    one seed, made after different draws, start from the same weights and take the same steps."""
    from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig

    def run(draws: int) -> tuple[dict, list[float]]:
        torch.rand(draws)  # the process RNG somewhere else
        df = DreamFusion(DreamFusionConfig(prompt="a red cube", guidance="vsd", steps=2, resolution=16), pixel_prior)
        start = {k: v.clone() for k, v in df.guidance.extra_state()[0].items()}
        return start, [df.step()["loss"] for _ in range(2)]

    (a, loss_a), (b, loss_b) = run(1), run(7)
    assert a.keys() == b.keys() and any("lora" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert loss_a == loss_b
