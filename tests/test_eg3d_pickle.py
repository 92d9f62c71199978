"""Official EG3D network pickles: the fixture writer's byte structure, the restricted reader, load_generator and our
model folder format (round trips with identical tensors and identical G(z, c))."""

from __future__ import annotations

import io
import json
import pickle
import pickletools
from collections import OrderedDict

import numpy as np
import pytest
import torch
from eg3d_pickle_fixtures import (
    D_KWARGS,
    TINY_KWARGS,
    blob_globals,
    blob_location,
    d_state_spec,
    dumps,
    g_state_spec,
    global_names,
    legacy_storage_blob,
    module_state,
    official_parts,
    persistent,
    random_state,
    sentinel_source,
    snapshot_dict,
    storage_blobs,
    tiny_generator,
    write_generator_snapshot,
    write_snapshot,
)

from tristudio.core.eg3d import load as eg3d_load
from tristudio.core.eg3d.load import (
    FORMAT,
    GeneratorLoadError,
    ModelNotFoundError,
    convert_pickle,
    default_model_path,
    load_generator,
    save_generator,
)
from tristudio.core.io.checkpoint import CheckpointError
from tristudio.core.io.eg3d_pickle import (
    ALLOWED_GLOBALS,
    EG3DPickleError,
    read_network_pickle,
    restricted_loads,
)

# every global an official snapshot references (NVlabs/eg3d persistence.py, legacy.py, dnnlib/util.py; numpy >= 2
# writer): the allow-list of core/io/eg3d_pickle.py
NOTES_GLOBALS = {
    "collections.OrderedDict",
    "dnnlib.util.EasyDict",
    "numpy.dtype",
    "numpy._core.multiarray.scalar",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_tensor_v2",
    "torch.storage._load_from_bytes",
    "torch_utils.persistence._reconstruct_persistent_obj",
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.container.Sequential",
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
}

SPEC = g_state_spec()


@pytest.fixture(scope="module")
def spec_state():
    return random_state(SPEC, seed=0)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory, spec_state):
    """A snapshot of the spec config (plane_axes on 'cuda:0'), written once; its module_src would create SENTINEL."""
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "network-snapshot-000000.pkl"
    path.write_bytes(dumps(snapshot_dict(spec_state, TINY_KWARGS, sentinel=folder / "SENTINEL", cuda=True)))
    return path


@pytest.fixture()
def spec_pickle(tmp_path, spec_file):
    path = tmp_path / spec_file.name
    path.write_bytes(spec_file.read_bytes())
    return path


@pytest.fixture(scope="module")
def G():
    return tiny_generator(seed=0)


@pytest.fixture(scope="module")
def g_file(tmp_path_factory, G):
    folder = tmp_path_factory.mktemp("tiny")
    return write_generator_snapshot(folder / "tiny.pkl", G, sentinel=folder / "SENTINEL")


@pytest.fixture()
def g_pickle(tmp_path, g_file):
    path = tmp_path / g_file.name
    path.write_bytes(g_file.read_bytes())
    return path


def _cameras(n=2):
    c = torch.tensor([1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 2.7, 0, 0, 0, 1, 4.2634, 0, 0.5, 0, 4.2634, 0.5, 0, 0, 1.0])
    return c.expand(n, 25).clone()


def _render(G, seed=1):
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G(z, _cameras(), noise_mode="const", deterministic=True)


# ------------------------------------------------------------------------------------------- the writer


def test_writer_emits_the_official_globals_and_nothing_else(spec_file):
    data = spec_file.read_bytes()
    assert data[:2] == b"\x80\x04"
    assert any(op.name == "FRAME" for op, _, _ in pickletools.genops(data))
    assert set(global_names(data)) == NOTES_GLOBALS
    assert NOTES_GLOBALS | {"numpy.core.multiarray.scalar"} == ALLOWED_GLOBALS
    blobs = storage_blobs(data)
    assert len(blobs) == 2 * len(SPEC) + len(d_state_spec()) + 2  # G, G_ema, D, 2 x plane_axes
    inner = set()
    for blob in blobs:
        inner |= set(blob_globals(blob))
    assert inner == {"torch.FloatStorage", "torch.cuda.FloatStorage"}
    assert sorted({blob_location(b) for b in blobs}) == ["cpu", "cuda:0"]


def test_writer_top_level_layout(spec_file):
    tree = restricted_loads(spec_file.read_bytes())
    assert list(tree) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert tree["augment_pipe"] is None
    assert tree["G_ema"].class_name == "TriPlaneGenerator"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_hand_written_storage_blob_equals_torch_legacy_save(dtype):
    t = torch.randn(3, 5).to(dtype)
    f = io.BytesIO()
    torch.save(t._typed_storage(), f, _use_new_zipfile_serialization=False)
    # the storage key is torch's internal id: read it from torch's blob, then compare byte for byte
    blob = f.getvalue()
    g = io.BytesIO(blob)
    for _ in range(4):
        strings = [a for op, a, _ in pickletools.genops(g) if op.name == "BINUNICODE"]
    key = strings[1]
    assert legacy_storage_blob(t, key=key) == blob


# ------------------------------------------------------------------------------------------- the reader


@pytest.mark.parametrize(
    "dtype",
    [torch.float32, torch.float16, torch.float64, torch.bfloat16, torch.int64, torch.int32, torch.uint8, torch.bool],
)
def test_reads_what_torch_pickles(dtype):
    """Tensors and parameters pickled by torch itself (the path official snapshots take), incl. strided views."""
    base = (torch.randn(4, 6) * 10).to(dtype)
    items = {
        "plain": base,
        "param": torch.nn.Parameter(base.clone(), requires_grad=False),
        "transposed": base.t(),
        "slice": base[1:3, ::2],
        "scalar": base[0, 0].clone(),
        "empty": base[:0],
    }
    tree = restricted_loads(pickle.dumps(items, protocol=4))
    for name, t in items.items():
        got = tree[name].tensor
        assert got.dtype == t.dtype and got.shape == t.shape and torch.equal(got, t), name
    assert tree["param"].is_parameter and not tree["plain"].is_parameter


def test_numpy_scalars_and_easydicts_become_plain_python(spec_pickle):
    tree = restricted_loads(pickle.dumps({"g": np.float64(0.25), "i": np.int64(-3), "b": np.bool_(True)}))
    assert tree == {"g": 0.25, "i": -3, "b": True} and type(tree["g"]) is float and type(tree["i"]) is int
    snap = read_network_pickle(spec_pickle)
    assert type(snap.G_ema.init_kwargs["mapping_kwargs"]) is dict
    assert snap.G_ema.init_kwargs["sr_kwargs"] == TINY_KWARGS["sr_kwargs"]
    assert snap.G_ema.init_kwargs == TINY_KWARGS
    assert type(snap.D.init_kwargs["epilogue_kwargs"]) is dict and snap.D.init_kwargs == D_KWARGS


def test_state_dicts_keep_official_names_order_and_values(spec_pickle, spec_state):
    snap = read_network_pickle(spec_pickle)
    assert snap.G_ema.class_name == "TriPlaneGenerator" and snap.D.class_name == "DualDiscriminator"
    assert list(snap.G_ema.state_dict) == list(SPEC)  # official order: params, buffers, then children
    assert list(snap.D.state_dict) == list(d_state_spec())
    for k, t in spec_state.items():
        assert torch.equal(snap.G_ema.state_dict[k], t), k
        assert torch.allclose(snap.G.state_dict[k], t + 0.01), k  # G is not G_ema
    assert snap.G_ema.attributes["neural_rendering_resolution"] == 16
    assert snap.G_ema.attributes["rendering_kwargs"] == TINY_KWARGS["rendering_kwargs"]
    assert snap.training_set_kwargs["class_name"] == "training.dataset.ImageFolderDataset"
    assert snap.augment_pipe is None
    buffers = ("resample_filter", "noise_const", "w_avg")
    assert snap.G_ema.num_parameters() == sum(int(np.prod(s)) for k, s in SPEC.items() if not k.endswith(buffers))


def test_cuda_located_storages_map_to_cpu(spec_pickle):
    snap = read_network_pickle(spec_pickle)
    axes = snap.G_ema.extra_tensors["renderer.plane_axes"]
    assert axes.device.type == "cpu" and axes.shape == (3, 3, 3)
    assert torch.equal(axes[2], torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]))
    assert "renderer.plane_axes" not in snap.G_ema.state_dict


def test_module_src_never_runs(spec_file, tmp_path):
    payload = sentinel_source(spec_file.parent / "SENTINEL").encode()
    assert payload in spec_file.read_bytes()  # every persistent object carries the payload as its module_src
    read_network_pickle(spec_file)
    assert not (spec_file.parent / "SENTINEL").exists()
    # the canary is live: executing the module source the fixture carries would create the sentinel
    canary = tmp_path / "CANARY"
    exec(compile(sentinel_source(canary), "<fixture module_src>", "exec"), {})  # noqa: S102 - our own text
    assert canary.exists()


def test_non_persistent_buffers_are_skipped_and_children_recursed():
    leaf_state = module_state(
        params={"weight": torch.nn.Parameter(torch.ones(2), requires_grad=False)},
        buffers={"kept": torch.zeros(1), "scratch": torch.zeros(3)},
    )
    leaf_state["_non_persistent_buffers_set"] = {"scratch"}
    root = persistent(
        "Root",
        module_state(buffers={"b": torch.ones(1)}, modules={"child": persistent("Leaf", leaf_state, ""), "none": None}),
        "",
    )
    tree = restricted_loads(dumps({"G_ema": root}))
    from tristudio.core.io.eg3d_pickle import _collect

    state, _, params = _collect(tree["G_ema"], "G_ema", "<test>")
    assert list(state) == ["b", "child.weight", "child.kept"] and params == {"child.weight"}


def test_fixture_from_the_generator_matches_its_module_tree(g_pickle, G):
    snap = read_network_pickle(g_pickle)
    expected = G.state_dict()
    assert list(snap.G_ema.state_dict) == list(expected)
    assert all(snap.G_ema.state_dict[k].shape == v.shape for k, v in expected.items())


# ------------------------------------------------------------------------------------ load_generator / folders


def test_round_trip_pickle_load_convert_load_is_identical(g_pickle, g_file, G, tmp_path):
    reference = _render(G)
    G1 = load_generator(g_pickle)
    assert G1.neural_rendering_resolution == G.neural_rendering_resolution
    assert not G1.training and not any(p.requires_grad for p in G1.parameters())
    out_dir = tmp_path / "converted"
    summary = convert_pickle(g_pickle, out_dir)
    assert summary["parameters"] == sum(p.numel() for p in G.parameters())
    meta = json.loads((out_dir / "model.json").read_text())
    assert meta["format"] == FORMAT and meta["version"] == 1 and meta["source"]["network"] == "G_ema"
    assert meta["init_kwargs"] == G.init_kwargs and meta["neural_rendering_resolution"] == 16
    G2 = load_generator(out_dir)
    for k, v in G.state_dict().items():
        assert torch.equal(G1.state_dict()[k], v) and torch.equal(G2.state_dict()[k], v), k
    for out in (_render(G1), _render(G2)):
        for key in ("image", "image_raw", "image_depth"):
            assert torch.equal(out[key], reference[key]), key
    assert not (g_file.parent / "SENTINEL").exists()
    # the model.json / model.safetensors paths are accepted too
    assert load_generator(out_dir / "model.json").img_resolution == G.img_resolution


def test_save_generator_round_trip(G, tmp_path):
    save_generator(G, tmp_path / "m", source={"kind": "test"})
    G2 = load_generator(tmp_path / "m")
    assert all(torch.equal(G2.state_dict()[k], v) for k, v in G.state_dict().items())
    assert json.loads((tmp_path / "m" / "model.json").read_text())["source"] == {"kind": "test"}


def test_default_model_path(monkeypatch, tmp_path, G):
    monkeypatch.setattr(eg3d_load, "shipped_eg3d_path", lambda: tmp_path / "eg3d_heads")
    with pytest.raises(ModelNotFoundError, match="no shipped EG3D model"):
        default_model_path()
    with pytest.raises(ModelNotFoundError):
        load_generator(None)
    save_generator(G, tmp_path / "eg3d_heads" / "ffhq_tiny")
    assert default_model_path() == tmp_path / "eg3d_heads" / "ffhq_tiny"
    assert load_generator(None).img_resolution == G.img_resolution


def test_core_forwarder(g_pickle):
    import tristudio.core

    assert tristudio.core.load_generator(g_pickle).img_resolution == 32


# ------------------------------------------------------------------------------------------- bad inputs


def _bad(tmp_path, G, name, kind):
    """Build one bad input; returns its path."""
    p = tmp_path / name
    state, kwargs, nrr = official_parts(G)
    if kind == "not a pickle":
        p.write_text("hello, I am a text file\n")
    elif kind == "zip":
        p.write_bytes(b"PK\x03\x04" + bytes(100))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        data = write_generator_snapshot(tmp_path / "full.pkl", G).read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "missing G_ema":
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr, drop=("G_ema",))
    elif kind == "wrong shapes":
        state["decoder.net.0.weight"] = torch.zeros(5, 5)
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "missing key":
        state.pop("backbone.mapping.w_avg")
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "NaN":
        state["backbone.mapping.fc0.weight"][0, 0] = float("nan")
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "Inf":
        state["decoder.net.2.bias"][1] = float("inf")
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "bad kwargs":
        kwargs["rendering_kwargs"].pop("box_warp")
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "bad ray range":  # a converted pickle's rendering settings are checked as a model.json's are
        kwargs["rendering_kwargs"].update(ray_start=3.0, ray_end=2.0)
        write_snapshot(p, state, kwargs, neural_rendering_resolution=nrr)
    elif kind == "not a dict":
        p.write_bytes(pickle.dumps([1, 2, 3]))
    elif kind == "folder":
        p.mkdir()
    elif kind == "missing":
        pass
    return p


BAD = {
    "not a pickle": (EG3DPickleError, "not a network pickle"),
    "zip": (EG3DPickleError, "zip archive"),
    "empty": (EG3DPickleError, "is empty"),
    "truncated": (EG3DPickleError, "truncated"),
    "missing G_ema": (EG3DPickleError, "no 'G_ema' network"),
    "wrong shapes": (GeneratorLoadError, r"1 wrong shape: decoder.net.0.weight \(5, 5\)"),
    "missing key": (GeneratorLoadError, "1 missing: backbone.mapping.w_avg"),
    "NaN": (GeneratorLoadError, "'backbone.mapping.fc0.weight' holds NaN or Inf"),
    "Inf": (GeneratorLoadError, "'decoder.net.2.bias' holds NaN or Inf"),
    "bad kwargs": (GeneratorLoadError, "cannot build a TriPlaneGenerator"),
    "bad ray range": (GeneratorLoadError, r"init_kwargs.rendering_kwargs.ray_start is 3.0; expected a depth below"),
    "not a dict": (EG3DPickleError, "top level is a list"),
    "folder": (GeneratorLoadError, "not a tristudio model folder"),
    "missing": (ModelNotFoundError, "model not found"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_inputs_give_one_clear_error(kind, tmp_path, G):
    path = _bad(tmp_path, G, f"bad_{kind.replace(' ', '_')}.pkl", kind)
    err, pattern = BAD[kind]
    with pytest.raises(err, match=pattern) as info:
        load_generator(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_bad_model_folders(tmp_path, G):
    folder = save_generator(G, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(GeneratorLoadError, match="not a tristudio-eg3d model"):
        load_generator(folder)
    (folder / "model.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(GeneratorLoadError, match="version 99 is not supported"):
        load_generator(folder)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt checkpoint metadata"):
        load_generator(folder)
    (folder / "model.json").write_text(json.dumps(meta))
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    tensors["decoder.net.0.bias"][0] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="does not match the hash"):  # model.json's hash sees the edit
        load_generator(folder)
    meta.pop("safetensors_sha256")  # a folder without a hash (older tristudio): the NaN itself is caught
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GeneratorLoadError, match="'decoder.net.0.bias' holds NaN or Inf"):
        load_generator(folder)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt checkpoint tensors"):
        load_generator(folder)


def test_d_and_g_are_optional_but_g_ema_is_not(tmp_path, spec_state):
    path = write_snapshot(tmp_path / "only_gema.pkl", spec_state, TINY_KWARGS, drop=("G", "D"))
    snap = read_network_pickle(path)
    assert snap.G is None and snap.D is None and list(snap.G_ema.state_dict) == list(SPEC)
    path = tmp_path / "nets_wrong.pkl"
    path.write_bytes(dumps({"G_ema": OrderedDict(a=1)}))
    with pytest.raises(EG3DPickleError, match="'G_ema' is a OrderedDict, not an EG3D network"):
        read_network_pickle(path)


def test_model_writer_unshares_tensors(tmp_path):
    """A crafted pickle can make two entries one tensor; safetensors refuses shared memory, so the writer copies."""
    t = torch.ones(3)
    eg3d_load._write_model(tmp_path / "m", {"a": t, "b": t, "c": t[:2]}, {"format": FORMAT})
    from safetensors.torch import load_file

    got = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert torch.equal(got["a"], t) and torch.equal(got["b"], t) and torch.equal(got["c"], t[:2])
