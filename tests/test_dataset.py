"""EG3D datasets: exact round trips, xflip cameras, `check` finding each corruption, the CLI, resumable make."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.cameras import Cameras, project_points
from tristudio.core.data import EG3DDataset, check_dataset, flip_label, read_captions, read_dataset, write_dataset
from tristudio.core.data import make as make_mod
from tristudio.core.data.dataset import encode_png
from tristudio.core.worlds import object_cameras


def _toy(n: int = 4, res: int = 8):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, res, res, 3), dtype=np.uint8)
    labels = object_cameras(range(n)).label()
    return images, labels


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_write_read_round_trip_is_exact(tmp_path, suffix):
    images, labels = _toy()
    path = write_dataset(tmp_path / f"ds{suffix}", images, labels, captions={"x": {"caption": "a red cube"}})
    assert path.is_file() == (suffix == ".zip")
    got_images, got_labels, names = read_dataset(path)
    assert torch.equal(got_images, torch.from_numpy(images))
    assert torch.equal(got_labels, labels)
    assert names[0] == "00000/img00000000.png"
    assert read_captions(path) == {"x": {"caption": "a red cube"}}
    ds = EG3DDataset(path, xflip=True)
    assert len(ds) == 8 and ds.resolution == 8
    img, lab = ds[1]
    assert torch.equal(img, torch.from_numpy(images[1]).permute(2, 0, 1)) and torch.equal(lab, labels[1])
    img_f, lab_f = ds[5]
    assert torch.equal(img_f, img.flip(-1)) and torch.equal(lab_f, flip_label(labels[1]))
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers


def test_16_bit_grayscale_pngs_are_scaled_to_8_bits_not_read_as_white(tmp_path):
    """PIL's own conversion clipped every 16-bit value above 255 to white: a dataset of 16-bit PNGs checked OK, and
    was trained on and scored as white images."""
    import io

    from PIL import Image

    from tristudio.core.data.dataset import decode_image

    path = write_dataset(tmp_path / "ds", *_toy(n=2))
    sixteen = np.array([0, 1000, 128 * 257, 65535], np.uint16).repeat(16).reshape(8, 8)
    names = [name for name, _ in json.loads((path / "dataset.json").read_text())["labels"]]
    for name in names:
        Image.fromarray(sixteen).save(path / name)
    with Image.open(path / names[0]) as im:
        assert im.mode == "I;16"  # a real 16-bit PNG
    images, _, _ = read_dataset(path)
    expected = torch.tensor([0, 4, 128, 255], dtype=torch.uint8).repeat_interleave(16).reshape(8, 8, 1)
    assert images.shape == (2, 8, 8, 1) and torch.equal(images[0], expected)
    assert torch.equal(EG3DDataset(path)[1][0], expected.permute(2, 0, 1))
    report = check_dataset(path)
    assert report.ok and report.summary["resolution"] == "8x8x1"
    tiff = io.BytesIO()  # 32-bit integer samples have no 8-bit reading: refused, never wrapped around
    Image.fromarray(np.array([[0, 100000]], np.int32)).save(tiff, format="TIFF")
    with pytest.raises(ValueError, match="0..100000 are not 8- or 16-bit"):
        decode_image(tiff.getvalue())


def test_flip_label_mirrors_the_camera():
    labels = object_cameras(range(6)).label()
    torch.testing.assert_close(flip_label(flip_label(labels)), labels)
    pts = torch.rand(6, 10, 3) * 0.6 - 0.3
    uv, z = project_points(pts, Cameras.from_label(labels))
    uv_f, z_f = project_points(pts * torch.tensor([-1.0, 1, 1]), Cameras.from_label(flip_label(labels)))
    torch.testing.assert_close(uv_f[..., 0], 1 - uv[..., 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(uv_f[..., 1], uv[..., 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(z_f, z, atol=1e-5, rtol=0)
    c2w = flip_label(labels)[:, :16].reshape(-1, 4, 4)[:, :3, :3]
    assert torch.allclose(torch.linalg.det(c2w), torch.ones(6), atol=1e-5)


def _corrupt(path, kind: str) -> str:
    """Corrupt a written dataset folder in one way; returns the text its problem line must contain."""
    doc = json.loads((path / "dataset.json").read_text())
    name = doc["labels"][2][0]
    if kind == "missing":
        (path / name).unlink()
        return "missing file"
    if kind == "length":
        doc["labels"][2][1] = doc["labels"][2][1][:24]
        text = "label has 24 floats, expected 25"
    elif kind == "nan":
        doc["labels"][2][1][5] = float("nan")
        text = "NaN or Inf"
    elif kind == "rotation":
        doc["labels"][2][1][0] *= 1.5
        text = "not orthonormal"
    elif kind == "resolution":
        (path / name).write_bytes(encode_png(np.zeros((4, 4, 3), np.uint8)))
        return "mixed image sizes"
    elif kind == "unreadable":
        (path / name).write_bytes(b"not a png at all")
        return "unreadable image"
    (path / "dataset.json").write_text(json.dumps(doc))
    return text


@pytest.mark.parametrize("kind", ["missing", "length", "nan", "rotation", "resolution", "unreadable"])
def test_check_reports_each_corruption_on_its_own_line(tmp_path, kind):
    images, labels = _toy()
    path = write_dataset(tmp_path / "ds", images, labels)
    clean = check_dataset(path)
    assert clean.ok and clean.summary["count"] == 4 and clean.summary["resolution"] == "8x8"
    lo, hi = clean.summary["radius"]
    assert abs(lo - 2.5) < 1e-4 and abs(hi - 2.5) < 1e-4
    text = _corrupt(path, kind)
    report = check_dataset(path)
    assert len(report.problems) == 1, report.problems
    assert text in report.problems[0]
    assert "img00000002.png" in report.problems[0]
    # the same corruption inside a zip is found too
    zpath = tmp_path / "ds.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(path).as_posix())
    assert [p.replace(str(zpath), "") for p in check_dataset(zpath).problems] == report.problems


def test_cli_make_heads_and_objects_then_check(tmp_path):
    runner = CliRunner()
    heads = tmp_path / "heads.zip"
    r = runner.invoke(
        app,
        [
            "dataset",
            "make",
            "--world",
            "heads",
            "--count",
            "3",
            "--resolution",
            "16",
            "--out",
            str(heads),
            "--seed",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["dataset", "check", str(heads)])
    assert r.exit_code == 0, r.output
    assert "3 labelled images, resolution 16x16" in r.output
    images, labels, _ = read_dataset(heads)
    assert images.shape == (3, 16, 16, 3)
    assert (images.float().mean(dim=(1, 2, 3)) < 250).all()  # a head is in view, not just the white background
    radius = labels[:, [3, 7, 11]].norm(dim=-1)
    torch.testing.assert_close(radius, torch.full((3,), 2.7))
    objects = tmp_path / "objects"
    r = runner.invoke(
        app, ["dataset", "make", "--world", "objects", "--count", "2", "--resolution", "16", "--out", str(objects)]
    )
    assert r.exit_code == 0, r.output
    caps = read_captions(objects)
    rec = caps["00000/img00000000.png"]
    assert rec["caption_view"] == f"{rec['caption']}, {rec['view']}"
    assert rec["caption"].endswith(f"{rec['material']} {rec['color']} {rec['shape']}")
    (objects / "00000/img00000001.png").unlink()
    r = runner.invoke(app, ["dataset", "check", str(objects)])
    assert r.exit_code == 1 and "missing file" in r.output


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_interrupted_make_leaves_no_output_and_resumes(tmp_path, monkeypatch, suffix):
    out = tmp_path / f"ds{suffix}"
    real = make_mod.render_items
    calls, armed = [], [True]

    def flaky(world, seeds, resolution, *args):
        calls.append(seeds[0])
        if armed[0] and len(calls) == 2:
            raise KeyboardInterrupt  # killed while rendering the second chunk
        return real(world, seeds, resolution, *args)

    monkeypatch.setattr(make_mod, "render_items", flaky)
    with pytest.raises(KeyboardInterrupt):
        make_mod.make_dataset(make_mod.DatasetSpec("objects", 5, 8, seed=3, supersample=1, chunk=2), out)
    assert not out.exists()
    assert make_mod.work_dir(out).exists()
    calls.clear()
    armed[0] = False
    make_mod.make_dataset(make_mod.DatasetSpec("objects", 5, 8, seed=3, supersample=1, chunk=2), out)
    assert len(calls) == 2  # the finished first chunk was kept: only chunks 2 and 3 were rendered
    assert not make_mod.work_dir(out).exists() and check_dataset(out).ok
    fresh = make_mod.make_dataset(
        make_mod.DatasetSpec("objects", 5, 8, seed=3, supersample=1, chunk=2), tmp_path / f"fresh{suffix}"
    )
    a, b = read_dataset(out), read_dataset(fresh)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert read_captions(out) == read_captions(fresh)


def test_a_users_folder_where_the_work_folder_goes_is_refused_and_kept(tmp_path, monkeypatch):
    """The work folder `.NAME.partial/` beside --out is deleted when done: only one that is ours (params.json) is
    resumed or discarded, with a line saying which; a user's folder there is refused, every file kept."""
    spec = make_mod.DatasetSpec("objects", 2, 8, seed=3, supersample=1, chunk=2)
    out = tmp_path / "pp"
    mine = make_mod.work_dir(out)
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"\.pp\.partial is in the way: it is not a dataset's work folder"):
        make_mod.make_dataset(spec, out)
    assert (mine / "notes.txt").read_text() == "mine" and not out.exists()
    (mine / "notes.txt").unlink()
    lines = []
    real = make_mod.render_items
    monkeypatch.setattr(make_mod, "render_items", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        make_mod.make_dataset(spec, out, log=lines.append)  # (an empty folder of that name: taken)
    monkeypatch.setattr(make_mod, "render_items", real)
    make_mod.make_dataset(spec, out, log=lines.append)
    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(make_mod, "render_items", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        make_mod.make_dataset(spec, other)
    monkeypatch.setattr(make_mod, "render_items", real)
    make_mod.make_dataset(
        make_mod.DatasetSpec("objects", 2, 8, seed=4, supersample=1, chunk=2), other, log=lines.append
    )
    assert lines == [
        f"resuming from {mine}",
        f"discarding {make_mod.work_dir(other)}: its images were made with other parameters",
    ]
    assert check_dataset(out).ok and check_dataset(other).ok


def test_dataset_make_into_the_current_folder(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = CliRunner().invoke(
        app, ["dataset", "make", "--world", "objects", "--count", "2", "--resolution", "8", "--out", "."]
    )
    assert r.exit_code == 0, r.output
    assert check_dataset(here).ok and sorted(p.name for p in tmp_path.iterdir()) == ["here"]  # no lock or work left


def test_datasets_made_with_different_seeds_hold_different_items():
    """torch's CPU generator keeps only the low 32 bits of a seed: item seeds must differ there, or --seed 1 would
    render the very heads and cameras of --seed 0."""
    from tristudio.core.data.make import item_seed, render_items

    seeds = {s: [item_seed(s, i) for i in range(1000)] for s in (0, 1, 2)}
    assert seeds[0] == list(range(1000))
    low = {s: {x % (1 << 32) for x in v} for s, v in seeds.items()}
    assert all(len(v) == 1000 for v in low.values())
    assert not (low[0] & low[1]) and not (low[0] & low[2]) and not (low[1] & low[2])
    a_img, a_lab, _ = render_items("heads", seeds[0][:2], 16, supersample=1)
    b_img, b_lab, _ = render_items("heads", seeds[1][:2], 16, supersample=1)
    assert not np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert not torch.equal(torch.as_tensor(a_lab), torch.as_tensor(b_lab))


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_a_dataset_with_ground_truth_is_remade_in_place(tmp_path, suffix):
    """`--ground-truth` adds gt/NNNNN/imgNNNNNNNN.npz beside the images: remaking the dataset must see those as its
    own files (not a user's) and replace it, while a user's file beside them is still refused."""
    out = tmp_path / f"ds{suffix}"
    make_mod.make_dataset(make_mod.DatasetSpec("objects", 2, 8, supersample=1, ground_truth=True), out)
    make_mod.make_dataset(make_mod.DatasetSpec("objects", 3, 8, supersample=1, ground_truth=True), out)
    assert len(read_dataset(out)[1]) == 3
    names = zipfile.ZipFile(out).namelist() if suffix else [p.relative_to(out).as_posix() for p in out.rglob("*")]
    assert "gt/00000/img00000002.npz" in names
    if not suffix:
        (out / "gt" / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match="notes.txt"):
            make_mod.make_dataset(make_mod.DatasetSpec("objects", 1, 8, supersample=1), out)
        assert (out / "gt" / "notes.txt").is_file()


def test_dataset_spec_is_the_work_folders_params_and_refuses_bad_values():
    """params.json is the resume key: a spec with the default cameras and no ground truth must write the very keys the
    first format wrote (so interrupted work folders from then still resume), and the extras only when set."""
    spec = make_mod.DatasetSpec("objects", 5, 8, seed=3)
    assert spec.params() == dict(version=1, world="objects", count=5, resolution=8, seed=3, supersample=2, chunk=32)
    extra = make_mod.DatasetSpec("heads2", 5, 8, cameras="rebalanced", ground_truth=True).params()
    assert extra["cameras"] == "rebalanced" and extra["ground_truth"] is True
    for bad, match in [
        (dict(world="cubes"), "unknown world 'cubes'"),
        (dict(count=0), "count >= 1"),
        (dict(resolution=2), "resolution >= 4"),
        (dict(chunk=0), "chunk >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_mod.DatasetSpec(**{"world": "objects", "count": 2, "resolution": 8, **bad})
