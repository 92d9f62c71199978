"""A training run's folder stands for the model it exports (core/io/training_run.py run_export): `--model RUN` of a
`train eg3d` run loads RUN/model, `--prior RUN` / `--clip RUN` of a `train prior` / `train clip` run load RUN/export;
a run that has exported nothing yet is one error naming the file expected."""

import pytest
import torch
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.eg3d.generator import TriPlaneGenerator
from tristudio.core.eg3d.load import load_generator, save_generator
from tristudio.core.eg3d.presets import preset
from tristudio.core.io.assets import shipped_clip_path
from tristudio.core.priors import load_prior
from tristudio.core.priors.clip import load_clip
from tristudio.core.priors.common import PriorLoadError


def _run(tmp_path, name):
    run = tmp_path / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")  # a run's own config, not a model's
    return run


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_an_eg3d_run_folder_is_its_exported_generator(tmp_path):
    run = _run(tmp_path, "eg3d")
    with pytest.raises(FileNotFoundError, match=r"training run without .*model\.json.*not exported its model yet"):
        load_generator(run)
    torch.manual_seed(0)
    save_generator(TriPlaneGenerator(**preset("tiny")).eval(), run / "model")
    assert _same(load_generator(run), load_generator(run / "model"))
    args = ["generate", "--model", str(run), "--seeds", "0", "--out", str(tmp_path / "g"), "--device", "cpu"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g" / "seed0000.png").is_file()


def test_prior_and_clip_run_folders_are_their_exports(tmp_path, tiny_prior_dir):
    prior_run, clip_run = _run(tmp_path, "prior"), _run(tmp_path, "clip")
    for run, load in ((prior_run, load_prior), (clip_run, load_clip)):
        with pytest.raises(PriorLoadError, match="not exported its model yet"):
            load(run, device="cpu")
    (prior_run / "export").symlink_to(tiny_prior_dir, target_is_directory=True)
    (clip_run / "export").symlink_to(shipped_clip_path(), target_is_directory=True)
    assert _same(load_prior(prior_run, device="cpu").unet, load_prior(tiny_prior_dir, device="cpu").unet)
    assert _same(load_clip(clip_run, device="cpu").model, load_clip(shipped_clip_path(), device="cpu").model)
    from tristudio.core.priors.train_prior import _load_clip_model  # `train prior --clip RUN` reads it the same way

    assert _same(_load_clip_model(str(clip_run))[0], load_clip(shipped_clip_path(), device="cpu").model)


def test_the_viewer_takes_a_prior_run_folder_as_its_prior(tmp_path, tiny_prior_dir):
    from tristudio.viewer.dreamfusion import prior_folder

    run = _run(tmp_path, "prior")
    assert prior_folder(run) is None  # nothing exported yet: not a prior (the Model panel then says why)
    (run / "export").symlink_to(tiny_prior_dir, target_is_directory=True)
    assert prior_folder(run) == run / "export" and prior_folder(tiny_prior_dir) == tiny_prior_dir
    assert prior_folder(_run(tmp_path, "eg3d")) is None and prior_folder(tmp_path / "nothing") is None
