"""EG3D's two-stage neural-rendering-resolution schedule: closed form, and a resumed run stays on it."""

from __future__ import annotations

import pytest
import torch

from tristudio.core.data.dataset import write_dataset
from tristudio.core.eg3d import loss as L
from tristudio.core.eg3d import train as T
from tristudio.core.eg3d.presets import TRAIN_SCHEDULES, preset
from tristudio.core.io.run_checkpoints import load_latest


def test_two_stage_resolution_closed_form():
    cfg = L.LossConfig.from_dict(
        {k: v for k, v in TRAIN_SCHEDULES["medium-two-stage"].items() if k.startswith("neural")}
    )
    start, fade = cfg.neural_rendering_resolution_fade_start_kimg, cfg.neural_rendering_resolution_fade_kimg
    at = lambda kimg: L.neural_rendering_resolution_at(kimg * 1e3, cfg, 64)  # noqa: E731
    assert at(0) == 32 and at(start) == 32  # stage 1
    assert at(start + fade / 2) == 48  # linear fade
    assert at(start + fade) == 64 and at(10 * (start + fade)) == 64  # stage 2
    assert L.neural_rendering_resolution_at(0, L.LossConfig(), 16) == 16  # no schedule: the generator's own
    g = preset("medium")
    assert g["img_resolution"] == 128 and g["neural_rendering_resolution"] == 64


def test_medium_networks_fit_the_shipping_budget():
    from tristudio.core.eg3d.discriminator import DualDiscriminator, discriminator_kwargs
    from tristudio.core.eg3d.generator import TriPlaneGenerator

    G = TriPlaneGenerator(**preset("medium"))
    D = DualDiscriminator(**discriminator_kwargs("medium"))
    assert sum(p.numel() for p in G.parameters()) * 4 < 25e6  # shipped G_ema in float32 under 25 MB
    assert D.img_resolution == 128
    with torch.no_grad():  # D reads the preset's two images: 128 px final and 64 px raw
        z = torch.randn(1, G.z_dim)
        c = torch.zeros(1, 25)
        c[0, [0, 5, 10, 15]] = 1
        c[0, 11] = 2.7
        c[0, 16:25] = torch.tensor([4.26, 0, 0.5, 0, 4.26, 0.5, 0, 0, 1])
        out = G(z, c, neural_rendering_resolution=16)
        assert out["image"].shape == (1, 3, 128, 128) and out["image_raw"].shape == (1, 3, 16, 16)
        assert D({"image": out["image"], "image_raw": out["image_raw"]}, c).shape == (1, 1)


@pytest.mark.slow
def test_resolution_switch_resumes_on_schedule(tmp_path):
    from tristudio.core.worlds.camera_sampling import head_cameras

    images = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = write_dataset(tmp_path / "d", images, head_cameras(list(range(8))).label())
    loss = {
        "neural_rendering_resolution_initial": 8,
        "neural_rendering_resolution_final": 16,
        "neural_rendering_resolution_fade_start_kimg": 0.004,  # after 2 steps of batch 2
        "neural_rendering_resolution_fade_kimg": 0.004,
        "r1_interval": 0,
        "density_reg": 0.0,
    }

    def cfg(out):
        return T.TrainConfig(data=str(data), out=str(out), preset="tiny", kimg=0.012, batch=2, seed=1, snap=1,
                             sample_every=0, threads=1, device="cpu", loss=loss)  # fmt: skip

    ds = T.open_training_set(str(data))
    whole = T.Trainer(cfg(tmp_path / "a"), ds, log=lambda *_: None)
    nrr_whole = [whole.step()["nrr"] for _ in range(6)]
    assert nrr_whole == [8, 8, 8, 12, 16, 16]  # cur_nimg before each step: 0, 2, 4, 6, 8, 10
    first = T.Trainer(cfg(tmp_path / "b"), ds, log=lambda *_: None)
    nrr_b = [first.step()["nrr"] for _ in range(4)]
    first.save()
    resumed = T.Trainer(cfg(tmp_path / "b"), ds, log=lambda *_: None)
    resumed.load(load_latest(tmp_path / "b"))
    assert resumed.G_ema.neural_rendering_resolution == 12
    nrr_b += [resumed.step()["nrr"] for _ in range(2)]
    assert nrr_b == nrr_whole


@pytest.mark.parametrize(
    "args, density_reg",
    [([], 0.5), (["--density-reg", "0.3"], 0.3), (["--density-reg", "0.25"], 0.25)],
)
def test_train_eg3d_flags_given_on_the_command_line_win_over_the_schedule(monkeypatch, tmp_path, args, density_reg):
    """--schedule fills the loss settings; a flag typed on the command line wins, even when it equals the flag's
    default (--density-reg 0.25 was once taken for "not given" and replaced by the schedule's 0.5)."""
    from typer.testing import CliRunner

    import tristudio.core.eg3d.train as train_module
    from tristudio.cli.app import app

    seen = {}
    monkeypatch.setattr(train_module, "train", lambda cfg, resume, console: seen.update(cfg.loss))
    cmd = ["train", "eg3d", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--schedule", "medium-two-stage"]
    res = CliRunner().invoke(app, cmd + args)
    assert res.exit_code == 0, res.output
    assert seen["density_reg"] == density_reg
    assert seen["neural_rendering_resolution_initial"] == 32  # the rest of the schedule applies
    assert seen["r1_gamma"] == 1.0  # a flag the schedule does not name keeps its default
