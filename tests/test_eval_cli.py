"""`tristudio eval`: bad datasets, weights files and options are one clear error naming the file or option; the
numbers reported are the ones used; FID features of a model are reproducible; the JSON printed is valid JSON."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.io.assets import shipped_eg3d_path

MODEL = str(shipped_eg3d_path())


def run(*args):
    """The CliRunner result of one call; a Python exception escaping the command (a traceback) fails the test."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback instead of a clear error: {result.exception!r}\n{result.output}")
    return result


def refused(result, code: int, *needles) -> None:
    """Exit `code`, and every needle in the (unwrapped) error output."""
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == code, result.output
    for needle in needles:
        assert str(needle) in flat, (needle, result.output)


def strict_json(text: str):
    """JSON as the standard reads it: Python's NaN / Infinity tokens are refused."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"invalid JSON token {token} in {text}"))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A good 6-image heads dataset and variants: 1 image, NaN labels, a scaled rotation, a file that is no PNG."""
    from tristudio.core.data.make import DatasetSpec, make_dataset

    root = tmp_path_factory.mktemp("eval")
    good = make_dataset(DatasetSpec("heads", 6, 16, supersample=1), root / "good")

    def variant(name, edit_labels=None):
        out = root / name
        shutil.copytree(good, out)
        labels = json.loads((out / "dataset.json").read_text())
        if edit_labels:
            edit_labels(labels["labels"])
            (out / "dataset.json").write_text(json.dumps(labels))
        return out

    def nan_labels(entries):
        for entry in entries:
            entry[1] = [float("nan")] * 25

    def scaled_rotation(entries):
        entries[0][1][0] *= 2

    def one_image(entries):
        for name, _ in entries[1:]:
            (root / "one" / name).unlink()
        del entries[1:]

    out = {"good": good, "nan": variant("nan", nan_labels), "rotation": variant("rotation", scaled_rotation)}
    out["one"] = variant("one", one_image)
    out["not_png"] = variant("not_png")
    (out["not_png"] / "00000" / "img00000002.png").write_text("not an image")
    return out


# ------------------------------------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_a_one_image_dataset_is_refused_naming_it(metric, datasets):
    res = run("eval", metric, "--model", MODEL, "--data", datasets["one"], "--features", "sw", "--num", "2")
    refused(res, 1, datasets["one"], "holds 1 image", "at least 2 images per side")


@pytest.mark.parametrize(
    ("case", "metric", "needle"),
    [
        ("nan", "fid", "00000/img00000000.png: label contains NaN or Inf"),
        ("nan", "kid", "00000/img00000005.png: label contains NaN or Inf"),
        ("rotation", "fid", "00000/img00000000.png: cam2world rotation is not orthonormal"),
        ("not_png", "kid", "00000/img00000002.png: unreadable image"),
    ],
)
def test_eval_refuses_the_datasets_train_eg3d_refuses_naming_the_file(case, metric, needle, datasets):
    """The check is `train eg3d`'s (open_training_set): the same problems, named by file, before anything is scored."""
    res = run("eval", metric, "--model", MODEL, "--data", datasets[case], "--features", "sw", "--num", "2")
    refused(res, 1, f"dataset {datasets[case]}", needle)
    assert res.stdout == ""  # nothing scored


def test_eg3d_acceptance_checks_both_datasets_before_measuring(datasets, tmp_path):
    good, bad = datasets["good"], datasets["rotation"]
    for train, held_out in ((bad, good), (good, bad)):
        out = tmp_path / held_out.name
        args = ["--train", train, "--held-out", held_out, "--out", out, "--num", "2"]
        refused(run("eval", "eg3d-acceptance", "--model", MODEL, *args), 1, bad, "not orthonormal")
        assert not (out / "acceptance.json").exists()


def test_fid_reports_the_images_used_per_side_and_notes_a_short_dataset(datasets):
    res = run("eval", "fid", "--model", MODEL, "--data", datasets["good"], "--features", "sw", "--num", "8")
    assert res.exit_code == 0, res.output
    report = strict_json(res.stdout)
    assert (report["num_real"], report["num_fake"]) == (6, 8) and "num" not in report
    assert report["FID-sw"] > 0
    assert "holds 6 images, fewer than --num 8" in " ".join(res.stderr.split())


# ------------------------------------------------------------------------------------------ extractors' weights


@pytest.mark.parametrize("kind", ["text", "pickle", "list"])
def test_an_inception_file_that_is_not_the_weights_is_named_with_the_expected_file(kind, datasets, tmp_path):
    import collections
    import pickle

    from tristudio.core.metrics.inception import FID_WEIGHTS_NAME

    path = tmp_path / f"weights.{kind}"
    if kind == "text":
        path.write_text("hello world\n")
    elif kind == "pickle":  # code torch's weights-only loader refuses to run
        path.write_bytes(pickle.dumps(collections.Counter(a=1)))
    else:
        torch.save([torch.zeros(2)], path)
    res = run("eval", "fid", "--model", MODEL, "--data", datasets["good"], "--inception", path, "--num", "2")
    refused(res, 1, path, "FID Inception weights", f"expected {FID_WEIGHTS_NAME}")
    assert "weights_only" not in res.output  # torch's page of advice is not repeated


@pytest.mark.parametrize(
    ("args", "option", "applies_to"),
    [
        (["--features", "sw", "--inception", "x.pth"], "--inception", "--features inception"),
        (["--extractor", "ext"], "--extractor", "--features sw"),
    ],
)
def test_a_weights_option_of_the_other_features_is_refused_naming_it(args, option, applies_to, datasets):
    res = run("eval", "kid", "--model", MODEL, "--data", datasets["good"], "--num", "2", *args)
    refused(res, 2, f"Invalid value for {option}", f"it applies to {applies_to}")


def test_each_features_kind_reads_its_own_weights_option(datasets, tmp_path):
    """--extractor is the path of --features sw and --inception the one of inception (it was the other way round)."""
    missing = tmp_path / "nothing"
    res = run("eval", "fid", "--model", MODEL, "--data", datasets["good"], "--features", "sw", "--extractor", missing)
    refused(res, 1, missing)
    res = run("eval", "fid", "--model", MODEL, "--data", datasets["good"], "--inception", missing)
    refused(res, 1, missing)


# ------------------------------------------------------------------------------------------------ other options


@pytest.mark.parametrize("threshold", ["-1", "0", "1", "1.5", "nan"])
def test_floaters_threshold_outside_0_1_is_refused(threshold):
    refused(run("eval", "floaters", "--model", MODEL, "--threshold", threshold), 2, "--threshold", "(0, 1)")


# ---------------------------------------------------------------------------------------------- reproducibility


def test_generator_features_do_not_depend_on_the_global_rng():
    """The renderer jitters its samples and adds density noise from the global RNG: two runs of `eval fid` once
    gave FID-sw 4.444 and 4.488. Seeded per call, the features are the same whatever the RNG's state, which is
    given back as it was."""
    from tristudio.core.eg3d.load import load_generator
    from tristudio.core.metrics.features import generator_features, load_extractor
    from tristudio.core.worlds.camera_sampling import head_cameras

    G, net = load_generator(MODEL), load_extractor("sw", None)
    labels = head_cameras([0, 1, 2]).label()  # (3, 25) FFHQ-distributed camera labels
    feats = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        feats.append(generator_features(net, G, labels, 3, batch=2))
        assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(feats[0], feats[1])
    assert not torch.equal(feats[0][0], feats[0][1])  # different seeds' images are still told apart


# ----------------------------------------------------------------------------------------------------- outputs


def test_nan_features_are_refused_naming_what_was_extracted():
    from tristudio.core.metrics.features import extract

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return torch.full((len(x), 4), float("nan")) * self.w

    with pytest.raises(ValueError, match="the features of 2 of 2 generated images are NaN or Inf"):
        extract(Broken(), torch.rand(2, 3, 8, 8), what="generated images")


def test_json_reports_hold_null_for_nan_and_a_note_names_it(capsys):
    from tristudio.cli.commands.evaluate import print_report

    text = print_report({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": float("nan"), "e": 2}}, "why so")
    assert strict_json(text) == {"a": None, "b": [1.0, None], "c": {"d": None, "e": 2}}
    out, err = capsys.readouterr()
    assert strict_json(out) == strict_json(text)
    assert "a, b[1], c.d: null, undefined: why so" in err


def test_id_sw_of_one_seed_prints_valid_json_with_a_note():
    res = run("eval", "id-sw", "--model", MODEL, "--num", "1")
    assert res.exit_code == 0, res.output
    report = strict_json(res.stdout)
    assert report["model"]["ID_chance"] is None and report["ground_truth"]["ID_chance"] is None
    assert 0 < report["model"]["ID"] <= 1
    assert "model.ID_chance" in res.stderr and "--num 2" in res.stderr


def test_id_sw_train_keeps_a_model_folder_and_names_an_unwritable_out_before_training(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    refused(run("eval", "id-sw-train", "--out", model, "--identities", "2", "--steps", "1"), 2, "already holds a model")
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    refused(
        run("eval", "id-sw-train", "--out", "/proc/tristudio-x", "--identities", "2", "--steps", "1"),
        2,
        "cannot be made",
    )
