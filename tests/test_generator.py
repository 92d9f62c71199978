"""TriPlaneGenerator: official state-dict layout, parity with NVlabs' code, cached-plane re-rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tristudio.core.cameras import Cameras
from tristudio.core.eg3d.generator import TriPlaneGenerator
from tristudio.core.eg3d.presets import PRESETS, preset
from tristudio.core.eg3d.superres import SuperresolutionHybrid4X, superresolution_class

DATA = Path(__file__).parent / "data"


def _tiny(seed=0, **changes) -> TriPlaneGenerator:
    torch.manual_seed(seed)
    kw = preset("tiny")
    kw.update(changes)
    return TriPlaneGenerator(**kw).eval()


def _labels(n=2) -> torch.Tensor:
    return Cameras.orbit(torch.linspace(-0.4, 0.4, n), torch.linspace(0.1, -0.1, n), pivot=(0, 0, 0.2)).label()


def test_ffhq512_state_dict_matches_official_list():
    """Names, order and shapes of the 176 entries of EG3D's FFHQ-512 G_ema (tests/data/eg3d_ffhq512_state_dict.txt: the
    official TriPlaneGenerator's list, checked by scripts/eg3d_parity_reference.py)."""
    lines = [ln for ln in (DATA / "eg3d_ffhq512_state_dict.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == 176
    with torch.device("meta"):
        G = TriPlaneGenerator(**preset("ffhq512"))
    ours = [f"{k} {tuple(v.shape)}" for k, v in G.state_dict().items()]
    assert ours == lines
    assert sum(p.numel() for p in G.parameters()) == 30_662_136
    assert G.num_ws == 14 and G.neural_rendering_resolution == 128


def test_init_kwargs_are_json_and_rebuild_the_same_model():
    G = _tiny()
    kw = json.loads(json.dumps(G.init_kwargs))
    G2 = TriPlaneGenerator(**kw)
    assert {k: v.shape for k, v in G.state_dict().items()} == {k: v.shape for k, v in G2.state_dict().items()}
    assert G2.neural_rendering_resolution == G.neural_rendering_resolution
    assert G2.plane_channels == 8 and G2.plane_resolution == 32


def test_presets_build_and_errors_are_clear():
    for name in PRESETS:
        with torch.device("meta"):
            TriPlaneGenerator(**preset(name))
    with pytest.raises(ValueError, match="unknown generator preset"):
        preset("nope")
    kw = preset("tiny")
    del kw["rendering_kwargs"]["superresolution_module"]
    with pytest.raises(ValueError, match="superresolution_module"):
        TriPlaneGenerator(**kw)
    with pytest.raises(ValueError, match="unknown superresolution_module"):
        superresolution_class("training.superresolution.Nope")


def test_parity_with_official_small_reference():
    """Outputs of NVlabs' TriPlaneGenerator (reduced config, deterministic renderer) on the same weights: the reference
    is regenerated / re-checked from the official code by scripts/eg3d_parity_reference.py (see its README)."""
    folder = DATA / "eg3d_parity_small"
    meta = json.loads((folder / "model.json").read_text())
    t = load_file(str(folder / "model.safetensors"))
    G = TriPlaneGenerator(**meta["init_kwargs"], neural_rendering_resolution=meta["neural_rendering_resolution"])
    G.load_state_dict({k[2:]: v.float() for k, v in t.items() if k.startswith("G.")}, strict=True)
    G.eval()
    z, c = t["z"], t["c"]
    with torch.no_grad():
        assert (G.mapping(z, c) - t["out.ws_psi1"]).abs().max() < 1e-5
        ws = G.mapping(z, c, truncation_psi=meta["truncation_psi"], truncation_cutoff=meta["truncation_cutoff"])
        assert (ws - t["out.ws"]).abs().max() < 1e-5
        out = G.synthesis(ws, c, noise_mode="const", deterministic=True, return_planes=True)
    planes = out["planes"]
    assert (planes[..., ::16, ::16] - t["out.planes_stride16"]).abs().max() < 1e-4
    assert (planes[..., 120:136, 120:136] - t["out.planes_window"]).abs().max() < 1e-4
    for key in ("image_raw", "image_depth", "image"):
        assert out[key].shape == t[f"out.{key}"].shape
        assert (out[key] - t[f"out.{key}"]).abs().max() < 1e-3, key


def test_rerendering_cached_planes_equals_full_forward():
    G = _tiny()
    z, c = torch.randn(2, G.z_dim), _labels(2)
    c_new = _labels(2).flip(0)
    with torch.no_grad():
        ws = G.mapping(z, c)
        full = G.synthesis(ws, c, deterministic=True, return_planes=True)
        planes = G.synthesis_planes(ws)
        assert torch.equal(planes, full["planes"])
        again = G.render_planes(planes, ws, Cameras.from_label(c), deterministic=True)
        for key in ("image", "image_raw", "image_depth"):
            assert torch.equal(again[key], full[key]), key
        # a new camera from cached planes == a full forward with that camera
        moved = G.render_planes(planes, ws, Cameras.from_label(c_new), deterministic=True)
        ref = G.synthesis(ws, c_new, deterministic=True)
        for key in ("image", "image_raw", "image_depth"):
            assert torch.equal(moved[key], ref[key]), key
        assert not torch.allclose(moved["image_raw"], full["image_raw"])
        raw_only = G.render_planes(planes, None, Cameras.from_label(c), deterministic=True, run_superres=False)
        assert "image" not in raw_only and torch.equal(raw_only["image_raw"], full["image_raw"])
    assert planes.shape == (2, 3, 8, 32, 32)


def test_forward_shapes_resolution_override_and_determinism():
    G = _tiny()
    z, c = torch.randn(2, G.z_dim), _labels(2)
    with torch.no_grad():
        a = G(z, c, deterministic=True)
        b = G(z, c, deterministic=True)
        r = G(z, c)  # EG3D's jittered sampling
        assert a["image"].shape == (2, 3, 32, 32) and a["image_raw"].shape == (2, 3, 16, 16)
        assert a["image_depth"].shape == (2, 1, 16, 16)
        assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image_raw"], r["image_raw"])
        d = a["image_depth"]
        assert d.min() >= 2.25 and d.max() <= 3.3
        o = G(z, c, neural_rendering_resolution=8, deterministic=True)
        assert o["image_raw"].shape == (2, 3, 8, 8) and o["image"].shape == (2, 3, 32, 32)
        assert G.neural_rendering_resolution == 8  # EG3D: an explicit resolution becomes the default


def test_camera_conditioning_switches():
    G = _tiny()
    z, c = torch.randn(2, G.z_dim), _labels(2)
    with torch.no_grad():
        assert not torch.allclose(G.mapping(z, c), G.mapping(z, c.flip(0)))
    G0 = _tiny(rendering_kwargs={**preset("tiny")["rendering_kwargs"], "c_gen_conditioning_zero": True})
    with torch.no_grad():
        torch.testing.assert_close(G0.mapping(z, c), G0.mapping(z, torch.zeros_like(c)))
    rk = dict(preset("tiny")["rendering_kwargs"])
    del rk["c_scale"]  # EG3D: missing c_scale means 0
    Gs = _tiny(rendering_kwargs=rk)
    with torch.no_grad():
        torch.testing.assert_close(Gs.mapping(z, c), Gs.mapping(z, 5 * c))


def test_white_back_and_density_noise():
    rk = dict(preset("tiny")["rendering_kwargs"])
    G = _tiny()
    Gw = _tiny(rendering_kwargs={**rk, "white_back": True})
    Gw.load_state_dict(G.state_dict())
    z, c = torch.randn(1, G.z_dim), _labels(1)
    with torch.no_grad():
        ws = G.mapping(z, c)
        planes = G.synthesis_planes(ws)
        a = G.render_planes(planes, ws, Cameras.from_label(c), deterministic=True)
        w = Gw.render_planes(planes, ws, Cameras.from_label(c), deterministic=True)
        # white background adds 2 * (1 - opacity) after the [-1, 1] mapping
        torch.testing.assert_close(w["image_raw"], a["image_raw"] + 2 * (1 - a["image_opacity"]), atol=1e-5, rtol=1e-5)
    Gn = _tiny(rendering_kwargs={**rk, "density_noise": 1.0})
    Gn.load_state_dict(G.state_dict())
    with torch.no_grad():
        n1 = Gn.render_planes(planes, ws, Cameras.from_label(c), deterministic=False)["image_raw"]
        torch.manual_seed(123)
        n2 = Gn.render_planes(planes, ws, Cameras.from_label(c), deterministic=False)["image_raw"]
        assert not torch.equal(n1, n2)


def test_superres_4x_resizes_only_up():
    torch.manual_seed(0)
    sr = SuperresolutionHybrid4X(
        channels=32, img_resolution=256, sr_num_fp16_res=4, sr_antialias=True, w_dim=16, block_channels=(8, 8)
    )
    assert sr.input_resolution == 128
    ws = torch.randn(1, 5, 16)
    out = sr(torch.randn(1, 3, 64, 64), torch.randn(1, 32, 64, 64), ws, noise_mode="none")
    assert out.shape == (1, 3, 256, 256)
    with pytest.raises(ValueError):
        sr(torch.randn(1, 3, 256, 256), torch.randn(1, 32, 256, 256), ws, noise_mode="none")  # not shrunk by 4X
