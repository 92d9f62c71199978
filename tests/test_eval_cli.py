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
