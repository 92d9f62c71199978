"""Guidance as a registry: one table of methods (names, labels, default scales), the prior's profile overriding a
scale, and the hooks the optimiser calls instead of asking which method it holds."""

from __future__ import annotations

import pytest
import torch

from tristudio.core.dreamfusion.guidance import GUIDANCES, SDS, VSD, default_guidance_scale, make_guidance
from tristudio.core.dreamfusion.methods import METHODS, methods_help
from tristudio.core.dreamfusion.optimize import DreamFusion, DreamFusionConfig
from tristudio.core.dreamfusion.profiles import DREAMFUSION, SMALL_WORLD, profile_for
from tristudio.core.priors import load_prior

CFG = dict(resolution=16, grid_resolution=16, samples=8)


@pytest.fixture(scope="module")
def prior(tiny_prior_dir):
    return load_prior(tiny_prior_dir, device="cpu")


def test_one_table_of_methods():
    assert list(GUIDANCES) == list(METHODS) == ["sds", "csd", "vsd"]
    for name, cls in GUIDANCES.items():
        assert cls.name == name and cls.default_scale == METHODS[name].default_scale
        assert cls.label == METHODS[name].label
    text = methods_help()
    for name, m in METHODS.items():
        assert f"{name}: {m.label}, scale {m.default_scale:g}" in text
    assert "small-world prior: 5" in text


def test_profiles_decide_in_one_place(prior, tiny_prior_dir, tmp_path):
    assert profile_for(prior) is profile_for(tiny_prior_dir) is profile_for("pixel-clip") is SMALL_WORLD
    assert profile_for(None) is profile_for("sd") is profile_for(tmp_path / "not-a-prior") is DREAMFUSION
    assert default_guidance_scale("sds", prior) == SMALL_WORLD.guidance_scales["sds"]
    assert default_guidance_scale("SDS", None) == SDS.default_scale
    assert default_guidance_scale("csd", prior) == GUIDANCES["csd"].default_scale  # no override: the method's own
    with pytest.raises(ValueError, match="unknown guidance 'xyz'"):
        make_guidance("xyz", prior)


def test_viewer_menu_reads_the_registry(tiny_prior_dir):
    from tristudio.viewer.dreamfusion import GUIDANCE_LABELS, default_scale
    from tristudio.viewer.dreamfusion import GUIDANCES as MENU

    assert MENU == tuple(METHODS) and GUIDANCE_LABELS == {n: m.label for n, m in METHODS.items()}
    assert default_scale("sds", str(tiny_prior_dir)) == 5.0 and default_scale("sds", "") == 100.0
    assert default_scale("vsd", str(tiny_prior_dir)) == 7.5


def test_hooks_replace_method_checks(prior, tmp_path):
    df = DreamFusion(DreamFusionConfig(prompt="a cube", steps=2, **CFG), prior)
    assert df.guidance.extra_state() == ({}, {})
    m = df.step()
    assert "lora_loss" not in m

    vsd = DreamFusion(DreamFusionConfig(prompt="a cube", guidance="vsd", steps=2, **CFG), prior)
    assert isinstance(vsd.guidance, VSD)
    m = vsd.step()
    assert m["lora_loss"] > 0  # after_step trained the LoRA on the step's renders
    tensors, meta = vsd.guidance.extra_state()
    assert any(k.startswith("vsd.lora.") for k in tensors) and "vsd_optimizer" in meta
    vsd.save(tmp_path / "ck")
    again = DreamFusion.load(tmp_path / "ck", prior)
    t2, _ = again.guidance.extra_state()
    for k, v in tensors.items():
        torch.testing.assert_close(t2[k], v, rtol=0, atol=0)


def test_negative_prompt_is_a_declared_field(prior):
    df = DreamFusion(DreamFusionConfig(prompt="a cube", negative_prompt="a sphere", guidance="csd", **CFG), prior)
    emb = df._embeddings(["a cube", "a cube, side view"])
    assert emb.negative is not None and emb.negative.shape == emb.cond.shape
    torch.testing.assert_close(emb.negative[0], prior.encode_prompt(["a sphere"]).cond[0])
    plain = DreamFusion(DreamFusionConfig(prompt="a cube", **CFG), prior)._embeddings(["a cube"])
    assert plain.negative is None


def test_readme_guidance_table_follows_the_registry():
    from pathlib import Path

    from tristudio.core.dreamfusion.profiles import PROFILES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "(w(t)" not in line]
    for name, m in METHODS.items():
        overrides = [f"{p.title}: {p.guidance_scales[name]:g}" for p in PROFILES.values() if name in p.guidance_scales]
        scale = f"{m.default_scale:g}" + (f" ({'; '.join(overrides)})" if overrides else "")
        row = next((r for r in rows if r.startswith(f"| `{name}` {m.label} |")), None)
        assert row is not None, f"README has no guidance row for {name}"
        assert row.endswith(f"| {scale} |"), row
