"""Offline diffusion priors and CLIP: every layout loads through load_prior, guidance / v-prediction / learned
variance are right, errors name the missing path, fp16 weights load, CLIP embeddings are unit-norm and
differentiable, and R-Precision gives the known answer on a constructed case."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from tristudio.core.priors import (
    PriorLoadError,
    clip_r_precision,
    load_clip,
    load_prior,
    r_precision_from_similarity,
)
from tristudio.core.priors.testing import (
    build_tiny_clip,
    build_tiny_if,
    build_tiny_pixel_prior,
    build_tiny_sd,
)

BUILDERS = {
    "sd": build_tiny_sd,
    "if": build_tiny_if,
    "pixel-clip": build_tiny_pixel_prior,
    "sd-v": lambda p: build_tiny_sd(p, prediction_type="v_prediction"),
    "sd-fp16": lambda p: build_tiny_sd(p, weights_dtype=torch.float16),
}


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("priors")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="session")
def priors(folders):
    return {name: load_prior(folders[name], device="cpu") for name in ("sd", "if", "pixel-clip", "sd-v")}


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def _noisy(prior, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    side = prior.resolution // prior.vae_scale_factor
    x_t = torch.randn(n, prior.latent_channels, side, side, generator=g)  # (n, C, h, w) model space
    t = torch.tensor([50, 700, 999][:n])
    return x_t, t


def _raw_unet(prior, x_t, t, emb):
    return prior.unet(x_t, t, encoder_hidden_states=emb).sample  # (n, C or 2C, h, w)


# ---- layouts --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, latent, resolution, channels, text_class",
    [
        ("sd", True, 64, 4, "CLIPTextModel"),
        ("if", False, 32, 3, "T5EncoderModel"),
        ("pixel-clip", False, 32, 3, "CLIPTextModel"),
    ],
)
def test_each_layout_loads(priors, name, latent, resolution, channels, text_class):
    prior = priors[name]
    assert prior.layout == name
    assert prior.is_latent == latent
    assert prior.resolution == resolution and prior.latent_channels == channels
    assert type(prior.text_encoder).__name__ == text_class
    assert prior.learned_variance == (name == "if")
    assert prior.num_train_timesteps == 1000 and prior.prediction_type == "epsilon"
    a = prior.alphas_cumprod
    assert a.shape == (1000,) and a.dtype == torch.float32
    assert torch.all(a[1:] < a[:-1]) and 0 < a[-1] < a[0] < 1
    assert torch.allclose(a, prior.scheduler.alphas_cumprod.float())
    for module in prior.modules().values():
        assert not module.training and not any(p.requires_grad for p in module.parameters())


def test_v_prediction_layout_reads_prediction_type(priors):
    assert priors["sd-v"].prediction_type == "v_prediction"


def test_encode_prompt_shapes_and_negative_prompts(priors):
    prior = priors["sd"]
    emb = prior.encode_prompt(["a red cube", "a blue ball"])
    assert emb.cond.shape == emb.uncond.shape == (2, 77, 32)
    assert not torch.allclose(emb.cond[0], emb.cond[1])  # the prompt matters
    empty = prior.encode_prompt(["", ""]).cond
    assert torch.allclose(emb.uncond, empty)  # no negative prompt == ""
    neg = prior.encode_prompt(["a red cube", "a blue ball"], negative="blurry")
    assert torch.allclose(neg.uncond[0], neg.uncond[1]) and not torch.allclose(neg.uncond, empty)
    with pytest.raises(ValueError):
        prior.encode_prompt(["a", "b"], negative=["only one"])


def test_if_prompts_use_t5_with_77_tokens(priors):
    emb = priors["if"].encode_prompt(["a red cube"])
    assert emb.cond.shape == (1, 77, 32) and not torch.allclose(emb.cond, emb.uncond)


# ---- noise prediction -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sd", "pixel-clip", "if"])
def test_guidance_one_batched_call_equals_two_separate_calls(priors, name):
    prior = priors[name]
    emb = prior.encode_prompt(["a red cube", "a blue ball"])
    x_t, t = _noisy(prior)
    calls = []
    hook = prior.unet.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        parts = prior.predict_noise(x_t, t, emb.cond, emb.uncond, guidance_scale=7.5, return_parts=True)
    finally:
        hook.remove()
    assert calls == [4]  # one UNet call on the CFG batch 2N
    c = prior.latent_channels
    with torch.no_grad():
        eps_cond = _raw_unet(prior, x_t, t, emb.cond)[:, :c]
        eps_uncond = _raw_unet(prior, x_t, t, emb.uncond)[:, :c]
    expected = eps_uncond + 7.5 * (eps_cond - eps_uncond)
    assert parts.eps.shape == x_t.shape
    torch.testing.assert_close(parts.eps_cond, eps_cond, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(parts.eps_uncond, eps_uncond, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(parts.eps, expected, atol=1e-4, rtol=1e-4)
    assert (eps_cond - eps_uncond).abs().max() > 1e-4  # guidance had something to amplify
    plain = prior.predict_noise(x_t, t, emb.cond, emb.uncond, guidance_scale=7.5)
    torch.testing.assert_close(plain, parts.eps)


def test_predict_noise_without_guidance_and_broadcast_embeddings(priors):
    prior = priors["pixel-clip"]
    emb = prior.encode_prompt(["a red cube"])  # (1, L, D) used for a batch of 2
    x_t, t = _noisy(prior)
    eps = prior.predict_noise(x_t, t, emb.cond)
    with torch.no_grad():
        expected = _raw_unet(prior, x_t, t, emb.cond.expand(2, -1, -1))
    torch.testing.assert_close(eps, expected, atol=1e-5, rtol=1e-5)
    scalar_t = prior.predict_noise(x_t, 700, emb.cond)
    torch.testing.assert_close(scalar_t[1], eps[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="uncond"):
        prior.predict_noise(x_t, t, emb.cond, return_parts=True)


def test_v_prediction_is_converted_to_eps(priors):
    prior = priors["sd-v"]
    emb = prior.encode_prompt(["a red cube", "a blue ball"])
    x_t, t = _noisy(prior)
    eps = prior.predict_noise(x_t, t, emb.cond)
    with torch.no_grad():
        v = _raw_unet(prior, x_t, t, emb.cond)
    a = prior.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)  # per-sample alpha_bar
    expected = a.sqrt() * v + (1 - a).sqrt() * x_t
    torch.testing.assert_close(eps, expected, atol=1e-4, rtol=1e-4)
    assert (eps - v).abs().max() > 1e-2  # the conversion did something


def test_v_prediction_round_trip_recovers_the_noise(priors):
    """With the true v of a known (x0, eps), the conversion must give back eps exactly (formula sanity check)."""
    prior = priors["sd-v"]
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([10, 900])
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = prior.scheduler.add_noise(x0, noise, t)
    v = prior.scheduler.get_velocity(x0, noise, t)
    torch.testing.assert_close(a.sqrt() * v + (1 - a).sqrt() * x_t, noise, atol=1e-4, rtol=1e-4)


def test_if_learned_variance_keeps_eps_channels(priors):
    prior = priors["if"]
    emb = prior.encode_prompt(["a red cube", "a blue ball"])
    x_t, t = _noisy(prior)
    eps = prior.predict_noise(x_t, t, emb.cond)
    with torch.no_grad():
        raw = _raw_unet(prior, x_t, t, emb.cond)
    assert raw.shape[1] == 6 and eps.shape == x_t.shape == (2, 3, 32, 32)
    torch.testing.assert_close(eps, raw[:, :3])
    assert not torch.allclose(eps, raw[:, 3:])


def test_predict_noise_gradient_reaches_x_t(priors):
    prior = priors["sd"]
    emb = prior.encode_prompt(["a red cube"])
    x_t, t = _noisy(prior, n=1)
    x_t.requires_grad_(True)
    prior.predict_noise(x_t, t, emb.cond, emb.uncond, guidance_scale=5.0).square().sum().backward()
    assert x_t.grad is not None and x_t.grad.abs().sum() > 0 and torch.isfinite(x_t.grad).all()


# ---- images -----------------------------------------------------------------------------------------------------
def test_sd_encode_images_has_gradients_and_resizes(priors):
    prior = priors["sd"]
    images = torch.rand(2, 3, 48, 80, requires_grad=True)  # not the prior's resolution: resized to 64
    latents = prior.encode_images(images, sample=False)
    assert latents.shape == (2, 4, 32, 32)
    latents.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0 and torch.isfinite(images.grad).all()
    again = prior.encode_images(images.detach(), sample=False)
    torch.testing.assert_close(again, latents.detach())  # posterior mean is deterministic
    with torch.no_grad():
        mean = prior.vae.encode(
            torch.nn.functional.interpolate(
                images.detach(), size=(64, 64), mode="bilinear", align_corners=False, antialias=True
            )
            * 2
            - 1
        ).latent_dist.mean
    torch.testing.assert_close(latents.detach(), mean * prior.vae.config.scaling_factor)
    decoded = prior.decode_latents(latents.detach())
    assert decoded.shape == (2, 3, 64, 64) and decoded.min() >= 0 and decoded.max() <= 1


def test_pixel_encode_images_is_scaled_and_resized(priors):
    prior = priors["pixel-clip"]
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    x = prior.encode_images(images)
    torch.testing.assert_close(x, images * 2 - 1)
    x.sum().backward()
    torch.testing.assert_close(images.grad, torch.full_like(images, 2.0))
    assert prior.encode_images(torch.rand(1, 3, 64, 64)).shape == (1, 3, 32, 32)
    torch.testing.assert_close(prior.decode_latents(x.detach()), images.detach())
    with pytest.raises(ValueError, match="N, 3, H, W"):
        prior.encode_images(torch.rand(3, 32, 32))


# ---- errors and offline -------------------------------------------------------------------------------------------
def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_hub_id_is_refused_with_the_path_expected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PriorLoadError) as info:
        load_prior("runwayml/stable-diffusion-v1-5")
    message = _one_line(info)
    assert str(tmp_path / "runwayml" / "stable-diffusion-v1-5") in message
    assert "hub id" in message and "Stable Diffusion" in message
    assert isinstance(info.value, ValueError)


def test_missing_folder_names_the_folder(tmp_path):
    missing = tmp_path / "no_such_prior"
    with pytest.raises(PriorLoadError) as info:
        load_prior(missing)
    assert str(missing) in _one_line(info)


def test_folder_without_model_index_names_the_file(tmp_path):
    with pytest.raises(PriorLoadError) as info:
        load_prior(tmp_path)
    assert str(tmp_path / "model_index.json") in _one_line(info)


@pytest.mark.parametrize(
    "name, removed, layout_words",
    [("sd", "vae", "Stable Diffusion"), ("if", "tokenizer", "DeepFloyd IF"), ("pixel-clip", "unet", "pixel-prior")],
)
def test_missing_subfolder_names_it_and_the_layout(folders, tmp_path, name, removed, layout_words):
    copy = shutil.copytree(folders[name], tmp_path / name)
    shutil.rmtree(copy / removed)
    with pytest.raises(PriorLoadError) as info:
        load_prior(copy)
    message = _one_line(info)
    assert str(copy / removed) in message and layout_words in message


def test_loading_sets_offline_mode(folders, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    load_prior(folders["pixel-clip"], device="cpu")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_device_auto_is_cpu_without_cuda(folders, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prior = load_prior(folders["pixel-clip"])
    assert prior.device.type == "cpu" and next(prior.unet.parameters()).device.type == "cpu"


def test_fp16_weights_load_and_compute_in_float32(folders, priors):
    from safetensors import safe_open

    weights = next((folders["sd-fp16"] / "unet").glob("*.safetensors"))
    with safe_open(str(weights), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16  # really fp16 on disk
    prior = load_prior(folders["sd-fp16"], device="cpu")
    assert prior.dtype == torch.float32
    for module in prior.modules().values():
        assert all(p.dtype == torch.float32 for p in module.parameters())
    # same seed as the fp32 fixture: the fp16-rounded weights give nearly the same eps
    emb = prior.encode_prompt(["a red cube"])
    x_t, t = _noisy(prior, n=1)
    eps16 = prior.predict_noise(x_t, t, emb.cond, emb.uncond, 3.0)
    ref = priors["sd"]
    ref_emb = ref.encode_prompt(["a red cube"])
    eps32 = ref.predict_noise(x_t, t, ref_emb.cond, ref_emb.uncond, 3.0)
    assert torch.isfinite(eps16).all()
    torch.testing.assert_close(eps16, eps32, atol=5e-2, rtol=5e-2)


def test_fp16_variant_only_folder_loads(folders, tmp_path):
    """A folder downloaded with variant="fp16" (diffusion_pytorch_model.fp16.safetensors only) still loads."""
    copy = shutil.copytree(folders["sd-fp16"], tmp_path / "variant")
    for sub in ("unet", "vae", "text_encoder"):
        for f in (copy / sub).glob("*.safetensors"):
            f.rename(f.with_name(f.name.replace(".safetensors", ".fp16.safetensors")))
    assert not list((copy / "unet").glob("diffusion_pytorch_model.safetensors"))
    prior = load_prior(copy, device="cpu")
    assert prior.dtype == torch.float32 and prior.is_latent


def test_bf16_compute_when_asked(folders):
    prior = load_prior(folders["pixel-clip"], device="cpu", dtype="bf16")
    assert next(prior.unet.parameters()).dtype == torch.bfloat16
    emb = prior.encode_prompt(["a red cube"])
    x_t, t = _noisy(prior, n=1)
    eps = prior.predict_noise(x_t, t, emb.cond)
    assert eps.dtype == torch.float32 and torch.isfinite(eps).all()  # returned in x_t's dtype


# ---- CLIP -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def clip(clip_folder):
    return load_clip(clip_folder, device="cpu")


def test_clip_embeddings_are_unit_norm_and_text_dependent(clip):
    text = clip.embed_text(["a red cube", "a blue ball", "a red cube"])
    assert text.shape == (3, 16)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(text[0], text[2])
    assert not torch.allclose(text[0], text[1])
    images = clip.embed_images(torch.rand(2, 3, 40, 56))
    assert images.shape == (2, 16)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(2))
    assert clip.similarity(torch.rand(2, 3, 32, 32), ["a", "b", "c"]).shape == (2, 3)


def test_clip_embed_images_is_differentiable(clip):
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    sim = clip.similarity(images, ["a red cube"])
    sim.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0 and torch.isfinite(images.grad).all()


def test_clip_preprocessing_uses_folder_stats_or_clip_defaults(clip_folder, tmp_path):
    import json

    from tristudio.core.priors.clip import CLIP_MEAN

    bare = shutil.copytree(clip_folder, tmp_path / "bare")
    (bare / "preprocessor_config.json").unlink()
    no_processor = load_clip(bare, device="cpu")
    assert no_processor.image_size == 32
    torch.testing.assert_close(no_processor.mean.flatten(), torch.tensor(CLIP_MEAN))
    plain = shutil.copytree(clip_folder, tmp_path / "plain")
    (plain / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0, 0, 0], "image_std": [1, 1, 1]}))
    identity = load_clip(plain, device="cpu")
    images = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(identity.preprocess(images), images)  # right size: only normalisation
    wide = identity.preprocess(torch.rand(1, 3, 32, 64))
    assert wide.shape == (1, 3, 32, 32)  # shorter side resized, centre crop


def test_load_clip_errors_name_the_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PriorLoadError) as info:
        load_clip("openai/clip-vit-base-patch32")
    assert str(tmp_path / "openai" / "clip-vit-base-patch32") in _one_line(info) and "CLIPModel" in str(info.value)
    with pytest.raises(PriorLoadError) as info:
        load_clip(tmp_path)
    assert str(tmp_path / "config.json") in _one_line(info)


# ---- R-Precision ------------------------------------------------------------------------------------------------
class _ControlledClip:
    """Embeddings we choose: prompt i -> basis vector e_i; an image -> the vector stored in its first pixel."""

    def __init__(self, prompts):
        self.prompts = list(prompts)

    def embed_text(self, texts):
        return torch.eye(len(self.prompts))[[self.prompts.index(t) for t in texts]]

    def embed_images(self, images):
        return torch.nn.functional.normalize(images[:, 0, 0, : len(self.prompts)], dim=-1)


def test_r_precision_known_answer():
    prompts = ["a cat", "a dog", "a car"]
    images = torch.zeros(4, 3, 4, 4)
    images[0, 0, 0, :3] = torch.tensor([0.9, 0.1, 0.0])  # right (cat)
    images[1, 0, 0, :3] = torch.tensor([0.1, 0.8, 0.3])  # right (dog)
    images[2, 0, 0, :3] = torch.tensor([0.0, 0.6, 0.4])  # wrong: car is 2nd
    images[3, 0, 0, :3] = torch.tensor([0.5, 0.0, 0.2])  # wrong: car is 2nd
    index = [0, 1, 2, 2]
    clip = _ControlledClip(prompts)
    assert clip_r_precision(clip, images, index, prompts, k=1) == pytest.approx(0.5)
    assert clip_r_precision(clip, images, index, prompts, k=2) == pytest.approx(1.0)
    assert clip_r_precision(clip, images, [1, 0, 0, 1], prompts, k=1) == pytest.approx(0.0)
    assert clip_r_precision(clip, images, index, prompts, k=1, batch_size=1) == pytest.approx(0.5)


def test_r_precision_ties_count_against_and_bad_inputs_raise():
    sim = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    assert r_precision_from_similarity(sim, [0, 0]) == pytest.approx(0.5)  # a tie is not a retrieval
    with pytest.raises(ValueError):
        r_precision_from_similarity(sim, [0, 2])
    with pytest.raises(ValueError):
        r_precision_from_similarity(sim, [0, 1], k=3)
    with pytest.raises(ValueError):
        r_precision_from_similarity(sim, [0])


def test_r_precision_with_real_tiny_clip_known_partial_answer(clip):
    """Real (tiny) CLIP embeddings; the true prompt of images 0-2 is their most similar prompt and of images 3-5 their
    least similar one (of 3), from similarities computed here: R@1 = R@2 = 0.5 exactly, R@3 = 1."""
    prompts = ["a red cube", "a blue ball", "a green cone"]
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = torch.nn.functional.normalize(clip.embed_images(images).float(), dim=-1)
        txt = torch.nn.functional.normalize(clip.embed_text(prompts).float(), dim=-1)
    sim = img @ txt.T  # (6, 3)
    srt = sim.sort(dim=1).values
    assert ((srt[:, 1:] - srt[:, :-1]) > 1e-6).all(), "no near-ties: the ranks are well defined"
    index = sim.argmax(1)[:3].tolist() + sim.argmin(1)[3:].tolist()
    assert clip_r_precision(clip, images, index, prompts, k=1) == pytest.approx(0.5)
    assert clip_r_precision(clip, images, index, prompts, k=2) == pytest.approx(0.5)
    assert clip_r_precision(clip, images, index, prompts, k=3) == pytest.approx(1.0)
    assert clip_r_precision(clip, images, sim.argmax(1).tolist(), prompts, k=1) == pytest.approx(1.0)
