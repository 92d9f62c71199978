"""A corpus of malicious and malformed pickles: each must be refused with a clear error naming the file (and the
global where there is one), and the sentinel file its payload would create must never appear."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch  # noqa: E402  (after the fixtures: they import torch too)
from eg3d_pickle_fixtures import (
    TINY_KWARGS,
    GlobalRef,
    Reduce,
    dumps,
    g_state_spec,
    legacy_storage_blob,
    module_state,
    nonpersistent,
    persistent,
    random_state,
    ref,
    sentinel_source,
    snapshot_dict,
)

from tristudio.core.eg3d.load import GeneratorLoadError, load_generator
from tristudio.core.io.eg3d_pickle import EG3DPickleError, UnsafePickleError, read_network_pickle, restricted_loads


def R(qualified: str, *args, state=None) -> Reduce:
    """`qualified(*args)` as a REDUCE (then BUILD(state) if given)."""
    return Reduce(ref(qualified), args, state)


def storage(n: int = 6, **kw) -> Reduce:
    return R("torch.storage._load_from_bytes", legacy_storage_blob(torch.arange(float(n)), **kw))


def tensor_args(st=None, offset=0, size=(6,), stride=(1,), hooks=None, extra=()):
    return (st if st is not None else storage(), offset, size, stride, False, hooks or OrderedDict(), *extra)


def blob(main: bytes, numel: int = 6, data: bytes | None = None, prefix: bytes | None = None) -> bytes:
    """A legacy storage stream whose 4th pickle (the storage) is `main`."""
    good = legacy_storage_blob(torch.arange(float(numel)))
    parts = [dumps(0x1950A86A20F9469CFC6C, 2), dumps(1001, 2)]
    parts.append(dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4}}, 2))
    head = prefix if prefix is not None else b"".join(parts)
    tail = dumps(["0"], 2) + numel.to_bytes(8, "little") + (data if data is not None else good[-4 * numel :])
    return head + main + tail


def persid_main(storage_type=("torch", "FloatStorage"), key="0", location="cpu", numel=6, view=None) -> bytes:
    marker = object()
    pid = ("storage", GlobalRef(*storage_type), key, location, numel, view)
    return dumps(marker, 2, lambda o: pid if o is marker else None)


def load_from_bytes(b: bytes) -> Reduce:
    return R(
        "torch._utils._rebuild_tensor_v2", R("torch.storage._load_from_bytes", b), 0, (6,), (1,), False, OrderedDict()
    )


def billion_laughs():
    x: list = []
    for _ in range(40):
        x = [x, x]
    return x


def deep(n=200):
    x: list = []
    for _ in range(n):
        x = [x]
    return x


def cyclic_module():
    stub = nonpersistent("training.triplane.OSGDecoder", module_state())
    stub.__dict__["_modules"] = {"again": stub}
    return persistent("TriPlaneGenerator", module_state(modules={"decoder": stub}), "")


def evil_snapshot(sentinel, evil_kwargs):
    spec = g_state_spec()
    return snapshot_dict(random_state(spec), {**TINY_KWARGS, **evil_kwargs}, sentinel=sentinel, d_state=OrderedDict())


def touch(s: Path) -> str:
    return f"touch {s}"


def write(s: Path) -> str:
    return f"open({str(s)!r}, 'w').write('pwned')"


# name -> (payload(sentinel) -> bytes, expected error, text the message must contain)
U, E = UnsafePickleError, EG3DPickleError
CORPUS = {
    # --- globals off the list (stdlib and friends)
    "os.system": (lambda s: dumps(R("os.system", touch(s))), U, "global os.system"),
    "posix.system": (lambda s: dumps(R("posix.system", touch(s))), U, "global posix.system"),
    "nt.system": (lambda s: dumps(R("nt.system", touch(s))), U, "global nt.system"),
    "builtins.eval": (lambda s: dumps(R("builtins.eval", write(s))), U, "global builtins.eval"),
    "builtins.exec": (lambda s: dumps(R("builtins.exec", write(s))), U, "global builtins.exec"),
    "builtins.__import__": (lambda s: dumps(R("builtins.__import__", "os")), U, "global builtins.__import__"),
    "getattr chain": (
        lambda s: dumps(Reduce(R("builtins.getattr", R("builtins.__import__", "os"), "system"), (touch(s),))),
        U,
        "global builtins.getattr",
    ),
    "__builtin__.eval (protocol 2 name)": (lambda s: dumps(R("__builtin__.eval", write(s)), 2), U, "__builtin__.eval"),
    "subprocess.Popen": (lambda s: dumps(R("subprocess.Popen", ["touch", str(s)])), U, "global subprocess.Popen"),
    "subprocess.check_output": (lambda s: dumps(R("subprocess.check_output", ["touch", str(s)])), U, "subprocess"),
    "pickle.loads (nested)": (lambda s: dumps(R("pickle.loads", dumps(R("os.system", touch(s))))), U, "pickle.loads"),
    "runpy._run_code": (lambda s: dumps(R("runpy._run_code", write(s), {})), U, "runpy._run_code"),
    "functools.partial": (lambda s: dumps(R("functools.partial", R("os.system"), touch(s))), U, "functools.partial"),
    "operator.attrgetter": (lambda s: dumps(R("operator.attrgetter", "system")), U, "operator.attrgetter"),
    "copyreg._reconstructor": (lambda s: dumps(R("copyreg._reconstructor", R("os.system"))), U, "copyreg"),
    "shutil.rmtree": (lambda s: dumps(R("shutil.rmtree", str(s.parent))), U, "global shutil.rmtree"),
    "codecs.encode": (lambda s: dumps(R("codecs.encode", "x", "rot13")), U, "global codecs.encode"),
    "webbrowser.open": (lambda s: dumps(R("webbrowser.open", "http://example.invalid")), U, "webbrowser.open"),
    # --- look-alikes of what a snapshot needs, and torch / EG3D helpers that import or execute
    "torch.load": (lambda s: dumps(R("torch.load", "/tmp/x.pt")), U, "global torch.load"),
    "torch.serialization.load": (lambda s: dumps(R("torch.serialization.load", "x")), U, "torch.serialization.load"),
    "torch._utils._rebuild_tensor (v1)": (lambda s: dumps(R("torch._utils._rebuild_tensor", 1)), U, "_rebuild_tensor"),
    "torch._utils._rebuild_parameter_with_state": (
        lambda s: dumps(R("torch._utils._rebuild_parameter_with_state", 1)),
        U,
        "_rebuild_parameter_with_state",
    ),
    "torch._tensor._rebuild_from_type_v2": (
        lambda s: dumps(R("torch._tensor._rebuild_from_type_v2", 1)),
        U,
        "_rebuild_from_type_v2",
    ),
    "numpy.core.multiarray._reconstruct": (
        lambda s: dumps(R("numpy.core.multiarray._reconstruct", R("numpy.ndarray"), (0,), b"b")),
        U,
        "_reconstruct",
    ),
    "numpy.load": (lambda s: dumps(R("numpy.load", "x.npy", None, True)), U, "global numpy.load"),
    "dnnlib.util.call_func_by_name": (
        lambda s: dumps(R("dnnlib.util.call_func_by_name", "os.system", touch(s))),
        U,
        "dnnlib.util.call_func_by_name",
    ),
    "dnnlib.util.construct_class_by_name": (
        lambda s: dumps(R("dnnlib.util.construct_class_by_name", "subprocess.Popen")),
        U,
        "construct_class_by_name",
    ),
    "torch_utils.persistence.persistent_class": (
        lambda s: dumps(R("torch_utils.persistence.persistent_class", 1)),
        U,
        "persistence.persistent_class",
    ),
    "unknown class training.networks_stylegan2.SynthesisLayer": (
        lambda s: dumps(nonpersistent("training.networks_stylegan2.SynthesisLayer", {"x": 1})),
        U,
        "training.networks_stylegan2.SynthesisLayer",
    ),
    "unknown class torch.nn.Linear": (
        lambda s: dumps(nonpersistent("torch.nn.modules.linear.Linear", {})),
        U,
        "torch.nn.modules.linear.Linear",
    ),
    # --- opcodes that reach code without find_class, or are never in a snapshot
    "protocol 0 GLOBAL + REDUCE": (
        lambda s: b"\x80\x02cos\nsystem\n(V" + touch(s).encode() + b"\ntR.",
        U,
        "global os.system",
    ),
    "INST opcode": (lambda s: b"\x80\x02(V" + touch(s).encode() + b"\nios\nsystem\n.", U, "opcode INST"),
    "OBJ opcode": (lambda s: b"\x80\x02(cos\nsystem\nV" + touch(s).encode() + b"\no.", U, "opcode OBJ"),
    "EXT1 (copyreg extension registry)": (lambda s: b"\x80\x02\x82\x01)R.", U, "opcode EXT1"),
    "persistent id in the outer pickle": (lambda s: b"\x80\x02X\x01\x00\x00\x00xQ.", U, "opcode BINPERSID"),
    "protocol 5 out-of-band buffer": (lambda s: b"\x80\x05\x97.", U, "opcode NEXT_BUFFER"),
    # --- allowed names with hostile arguments
    "_rebuild_tensor_v2 on a non-storage": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(st="not a storage"))),
        U,
        "storage is a str",
    ),
    "_rebuild_tensor_v2 on a real os.system result": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(st=R("os.system", touch(s))))),
        U,
        "global os.system",
    ),
    "_rebuild_tensor_v2 huge size": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(size=(10**12,)))),
        U,
        "elements) over",
    ),
    "_rebuild_tensor_v2 zero-stride amplification": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(size=(10**5, 10**5), stride=(0, 0)))),
        U,
        "elements) over",
    ),
    "_rebuild_tensor_v2 view past the storage": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(offset=3, size=(6,)))),
        U,
        "runs past",
    ),
    "_rebuild_tensor_v2 negative stride": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(size=(6,), stride=(-1,)))),
        U,
        "bad stride",
    ),
    "_rebuild_tensor_v2 negative offset": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(offset=-5))),
        U,
        "bad storage offset",
    ),
    "_rebuild_tensor_v2 backward hooks": (
        lambda s: dumps(R("torch._utils._rebuild_tensor_v2", *tensor_args(hooks={"h": "x"}))),
        U,
        "backward hooks",
    ),
    "_rebuild_tensor_v2 wrong arity": (lambda s: dumps(R("torch._utils._rebuild_tensor_v2", 1, 2)), U, "arguments"),
    "_rebuild_parameter on a string": (
        lambda s: dumps(R("torch._utils._rebuild_parameter", "x", False, OrderedDict())),
        U,
        "not a rebuilt tensor",
    ),
    "_load_from_bytes on text": (lambda s: dumps(R("torch.storage._load_from_bytes", "abc")), U, "one bytes argument"),
    "_load_from_bytes: os.system inside the blob": (
        lambda s: dumps(load_from_bytes(blob(dumps(R("os.system", touch(s)), 2)))),
        U,
        "opcode REDUCE",
    ),
    "_load_from_bytes: os.system as the storage type": (
        lambda s: dumps(load_from_bytes(blob(persid_main(storage_type=("os", "system"))))),
        U,
        "global os.system inside a tensor storage blob",
    ),
    "_load_from_bytes: storage type called": (
        lambda s: dumps(load_from_bytes(blob(dumps(R("torch.FloatStorage", 10**9), 2)))),
        U,
        "opcode REDUCE",
    ),
    "_load_from_bytes: element count lies": (
        lambda s: dumps(load_from_bytes(blob(persid_main(numel=10**12)))),
        E,
        "element count",
    ),
    "_load_from_bytes: data truncated": (
        lambda s: dumps(load_from_bytes(blob(persid_main(), data=b"\x00" * 7))),
        E,
        "truncated",
    ),
    "_load_from_bytes: storage view metadata": (
        lambda s: dumps(load_from_bytes(blob(persid_main(view=("0", 0, 6))))),
        U,
        "views are not supported",
    ),
    "_load_from_bytes: huge length claim inside the blob": (
        lambda s: dumps(load_from_bytes(blob(b"\x80\x02T\xff\xff\xff\x7f" + b"x" * 16 + b"."))),
        E,
        "truncated",
    ),
    "_load_from_bytes: bad magic": (
        lambda s: dumps(load_from_bytes(blob(persid_main(), prefix=dumps(123, 2) * 3))),
        E,
        "not a legacy torch.save",
    ),
    "_reconstruct_persistent_obj: version 5": (
        lambda s: dumps(persistent("TriPlaneGenerator", {}, sentinel_source(s), version=5)),
        U,
        "unsupported persistence version",
    ),
    "_reconstruct_persistent_obj: not a dict": (
        lambda s: dumps(R("torch_utils.persistence._reconstruct_persistent_obj", write(s))),
        U,
        "one dict argument",
    ),
    "_reconstruct_persistent_obj: code as class name": (
        lambda s: dumps(persistent("__import__('os').system", {}, sentinel_source(s))),
        U,
        "bad class name",
    ),
    "_reconstruct_persistent_obj: missing keys": (
        lambda s: dumps(R("torch_utils.persistence._reconstruct_persistent_obj", {"module_src": write(s)})),
        U,
        "meta lacks",
    ),
    "OrderedDict with arguments": (lambda s: dumps(R("collections.OrderedDict", [("a", 1)])), U, "OrderedDict"),
    "numpy.dtype object": (lambda s: dumps(R("numpy.dtype", "O", False, True)), U, "plain numeric dtypes"),
    "numpy scalar of the wrong size": (
        lambda s: dumps(R("numpy._core.multiarray.scalar", R("numpy.dtype", "f8", False, True), b"abc")),
        U,
        "3 bytes for a float64",
    ),
    "numpy scalar without a dtype": (
        lambda s: dumps(R("numpy.core.multiarray.scalar", "f8", b"12345678")),
        U,
        "expected (dtype, bytes)",
    ),
    "EasyDict with arguments": (lambda s: dumps(R("dnnlib.util.EasyDict", {"a": 1})), U, "EasyDict created with"),
    "module stub with arguments": (
        lambda s: dumps(R("training.triplane.OSGDecoder", 32, {})),
        U,
        "OSGDecoder created with arguments",
    ),
    "BUILD on a tensor (torch's __setstate__ / set_)": (
        lambda s: dumps(Reduce(ref("torch._utils._rebuild_tensor_v2"), tensor_args(), state=(1, 2, 3, 4))),
        U,
        "BUILD on a TensorNode",
    ),
    "BUILD on a persistent object": (
        lambda s: dumps(
            Reduce(
                ref("torch_utils.persistence._reconstruct_persistent_obj"),
                (dict(type="class", version=6, module_src="", class_name="X", state={}),),
                state={"__class__": 1},
            )
        ),
        U,
        "BUILD on a PersistentNode",
    ),
    # --- malformed streams and resource attacks
    "huge BINBYTES8 length claim": (
        lambda s: b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc.",
        E,
        "truncated",
    ),
    "huge FRAME claim": (lambda s: b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N.", E, "malformed"),
    "unknown opcode": (lambda s: b"\x80\x04\xff.", E, "malformed"),
    "no STOP": (lambda s: b"\x80\x04]q\x00", E, "malformed"),
    "billion laughs in init kwargs": (
        lambda s: dumps(
            {"G_ema": persistent("TriPlaneGenerator", module_state(init_kwargs={"x": billion_laughs()}), "")}
        ),
        E,
        "unreasonably large",
    ),
    "nesting too deep in init kwargs": (
        lambda s: dumps({"G_ema": persistent("TriPlaneGenerator", module_state(init_kwargs={"x": deep()}), "")}),
        E,
        "not plain data (nested too deeply)",
    ),
    "cyclic module tree": (lambda s: dumps({"G_ema": cyclic_module()}), E, "cyclic"),
    "module that is not a module": (
        lambda s: dumps({"G_ema": persistent("TriPlaneGenerator", module_state(modules={"m": "x"}), "")}),
        E,
        "m is a str, not a module",
    ),
    "parameter that is not a tensor": (
        lambda s: dumps({"G_ema": persistent("TriPlaneGenerator", module_state(params={"w": 3}), "")}),
        E,
        "w is a int, not a tensor",
    ),
    # --- payloads nested deep inside an otherwise valid snapshot
    "os.system inside G_ema's init kwargs": (
        lambda s: dumps(evil_snapshot(s, {"evil": R("os.system", touch(s))})),
        U,
        "global os.system",
    ),
    "builtins.exec inside a persistent object's state": (
        lambda s: dumps(
            {
                "G_ema": persistent(
                    "TriPlaneGenerator", module_state(attrs={"x": R("builtins.exec", write(s))}), sentinel_source(s)
                )
            }
        ),
        U,
        "global builtins.exec",
    ),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_malicious_pickle_is_refused(name, tmp_path):
    make, error, fragment = CORPUS[name]
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.pkl"
    path.write_bytes(make(sentinel))
    with pytest.raises(error) as info:
        read_network_pickle(path)
    message = str(info.value)
    assert fragment in message, message
    assert str(path) in message and "\n" not in message
    with pytest.raises(error):
        load_generator(path)
    try:  # the unpickler itself refuses every unsafe or malformed stream ...
        restricted_loads(path.read_bytes(), source="<bytes>")
    except EG3DPickleError as exc:
        assert isinstance(exc, error)
    else:  # ... and only well-formed pickles with a bad structure get past it (to be refused by the reader)
        assert error is E
    assert not sentinel.exists()


def test_persistent_module_src_is_never_executed(tmp_path):
    """A structurally valid persistent object whose module_src creates the sentinel: read, never exec'd."""
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "payload.pkl"
    path.write_bytes(dumps({"G_ema": persistent("TriPlaneGenerator", module_state(), sentinel_source(sentinel))}))
    snap = read_network_pickle(path)
    assert snap.G_ema.class_name == "TriPlaneGenerator" and snap.G_ema.state_dict == {}
    with pytest.raises(GeneratorLoadError, match="init_kwargs.rendering_kwargs is None"):  # (no init_kwargs)
        load_generator(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("name", ["os.system", "builtins.exec", "pickle.loads (nested)", "subprocess.Popen"])
def test_the_canaries_are_live(name, tmp_path):
    """The corpus is not toothless: plain pickle.load on these files does create the sentinel (in a subprocess)."""
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.pkl"
    path.write_bytes(CORPUS[name][0](sentinel))
    code = "import pickle, sys, time; pickle.load(open(sys.argv[1], 'rb')); time.sleep(0.2)"
    subprocess.run([sys.executable, "-c", code, str(path)], check=False, capture_output=True, timeout=60)
    assert sentinel.exists()
