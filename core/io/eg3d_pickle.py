"""Read official EG3D network pickles (ffhq512-128.pkl, network-snapshot-*.pkl) without running any of their code.

An EG3D snapshot is executable: each persistent network carries the source text of its Python module, which the
official loader `exec`s. This reader never does. It is a restricted unpickler whose allow-list holds exactly the
globals such a file needs (read from NVlabs/eg3d `torch_utils/persistence.py`, `legacy.py` and `dnnlib/util.py`),
each mapped to an inert stand-in that checks its arguments and builds plain data:

    torch._utils._rebuild_tensor_v2 / _rebuild_parameter  -> tensors copied out of a validated storage view
    torch.storage._load_from_bytes                        -> our own parser of the legacy torch.save stream (never
                                                             torch.load); inner globals: torch[.cuda].<T>Storage only,
                                                             every location mapped to CPU
    torch_utils.persistence._reconstruct_persistent_obj   -> PersistentNode(class_name, state); module_src ignored
    the six non-persistent module classes                 -> ModuleNode(official name, state)
    collections.OrderedDict, dnnlib.util.EasyDict         -> OrderedDict, dict subclass
    numpy.dtype, numpy.[_]core.multiarray.scalar          -> Python numbers

Any other global raises UnsafePickleError naming the global and the file. Before unpickling, every opcode is checked
(pickletools) against an opcode allow-list and every length field against the bytes actually present, so a forged
length cannot make the unpickler allocate memory the file does not hold.

    snap = read_network_pickle("ffhq512-128.pkl")
    snap.G_ema.class_name      # 'TriPlaneGenerator'
    snap.G_ema.init_kwargs     # plain dicts: z_dim, c_dim, ..., rendering_kwargs, sr_kwargs
    snap.G_ema.state_dict      # OrderedDict, official key names and order, CPU tensors
    snap.G_ema.attributes      # e.g. neural_rendering_resolution, rendering_kwargs
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "EG3DPickleError",
    "UnsafePickleError",
    "EG3DNetwork",
    "EG3DSnapshot",
    "PersistentNode",
    "ModuleNode",
    "TensorNode",
    "ALLOWED_GLOBALS",
    "ALLOWED_STORAGE_GLOBALS",
    "read_network_pickle",
    "restricted_loads",
]


class EG3DPickleError(ValueError):
    """A file that is not a readable EG3D network pickle (missing, not a pickle, truncated, malformed)."""


class UnsafePickleError(EG3DPickleError, pickle.UnpicklingError):
    """A pickle that references a global off the allow-list, or calls an allowed one with forged arguments."""


class _Reject(Exception):
    """Raised inside the unpickler; turned into UnsafePickleError(file: detail) at the top."""


class _Corrupt(Exception):
    """Raised inside the unpickler; turned into EG3DPickleError(file: detail) at the top."""


# ----------------------------------------------------------------------------------------------------- inert nodes


class _Inert:
    """Base of the objects the unpickler puts on its stack: no methods a pickle opcode could use (no append,
    __setitem__, add), and BUILD is refused unless a subclass expects it."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Reject(f"BUILD on a {type(self).__name__} is not allowed")

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} is an inert unpickling node and cannot be pickled")


class TensorNode(_Inert):
    """A tensor rebuilt from a storage blob (`tensor` is a CPU tensor that owns its memory)."""

    __slots__ = ("tensor", "is_parameter")

    def __init__(self, tensor: torch.Tensor, is_parameter: bool = False):
        self.tensor = tensor
        self.is_parameter = is_parameter

    def __repr__(self):
        kind = "Parameter" if self.is_parameter else "Tensor"
        return f"TensorNode({kind} {tuple(self.tensor.shape)} {self.tensor.dtype})"


class _StorageNode(_Inert):
    """A storage parsed from a legacy torch.save blob. flat: 1-D CPU tensor (numel,); location: as written."""

    __slots__ = ("flat", "location", "taken")

    def __init__(self, flat: torch.Tensor, location: str):
        self.flat = flat
        self.location = location
        self.taken = False  # True once a tensor uses `flat`'s memory directly


class PersistentNode(_Inert):
    """What `_reconstruct_persistent_obj(meta)` gives here: the class name and the object's __dict__ (`state`).
    The module source in `meta` is dropped unread."""

    __slots__ = ("class_name", "state")

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state

    def __repr__(self):
        return f"PersistentNode({self.class_name})"


def _no_arguments(official_name: str, args: tuple, kwargs: dict) -> None:
    """Classes that pickle rebuilds by NEWOBJ (then BUILD / SETITEMS) are created with no constructor arguments."""
    if args or kwargs:
        raise _Reject(f"{official_name} created with arguments {_brief(args)}; expected none")


class ModuleNode(_Inert):
    """Stand-in for a non-persistent module class pickled by reference (NEWOBJ + BUILD of its __dict__)."""

    __slots__ = ("state",)
    official_name = "?"

    def __new__(cls, *args, **kwargs):
        _no_arguments(cls.official_name, args, kwargs)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        _no_arguments(self.official_name, args, kwargs)

    def __setstate__(self, state):
        if _has_slot(self, "state"):
            raise _Reject(f"{self.official_name}: state set twice")
        if not isinstance(state, dict):
            raise _Reject(f"{self.official_name}: state is a {type(state).__name__}, expected a dict")
        self.state = state

    @property
    def class_name(self) -> str:
        return self.official_name.rsplit(".", 1)[-1]

    def __repr__(self):
        return f"ModuleNode({self.official_name})"


def _has_slot(obj, name: str) -> bool:
    try:
        getattr(obj, name)
        return True
    except AttributeError:
        return False


class _EasyDict(dict):
    """dnnlib.util.EasyDict: a dict (attribute access is not needed here). NEWOBJ with no arguments, then SETITEMS."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        _no_arguments("dnnlib.util.EasyDict", args, kwargs)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        _no_arguments("dnnlib.util.EasyDict", args, kwargs)
        super().__init__()

    def __setstate__(self, state):
        if state:
            raise _Reject("dnnlib.util.EasyDict: unexpected BUILD state")

    def __reduce__(self):
        raise TypeError("inert unpickling node")


class _DTypeNode(_Inert):
    """numpy.dtype(spec, align, copy) restricted to plain numeric kinds; BUILD sets the byte order."""

    __slots__ = ("spec", "byteorder")

    def __init__(self, spec: str):
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise _Reject(f"numpy.dtype: unexpected state {_brief(state)}")
        if state[1] not in ("<", ">", "|", "=") or any(v is not None for v in state[2:5]):
            raise _Reject(f"numpy.dtype: unexpected state {_brief(state)}")
        self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        dt = np.dtype(self.spec)
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt


class _StorageType(_Inert):
    """torch.<T>Storage / torch.cuda.<T>Storage inside a storage blob: only names a dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, dtype: torch.dtype, name: str):
        self.dtype = dtype
        self.name = name


class _PendingStorage(_Inert):
    __slots__ = ("key", "storage_type", "location", "numel")

    def __init__(self, key, storage_type, location, numel):
        self.key, self.storage_type, self.location, self.numel = key, storage_type, location, numel


def _brief(obj, limit: int = 120) -> str:
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real error
        text = f"<{type(obj).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(name: str, limit: int = 200) -> str:
    """A global's name as it can be shown on one line (escapes control characters, shortens long names)."""
    text = name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------- storage blobs (inner format)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
ALLOWED_STORAGE_GLOBALS = frozenset(
    f"{module}.{name}" for module in ("torch", "torch.cuda") for name in _STORAGE_DTYPES
)

_DATA_OPCODES = frozenset(
    """PROTO FRAME STOP MARK POP POP_MARK DUP INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT NONE NEWTRUE
    NEWFALSE STRING BINSTRING SHORT_BINSTRING UNICODE SHORT_BINUNICODE BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES
    BINBYTES8 BYTEARRAY8 EMPTY_LIST APPEND APPENDS LIST EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_DICT DICT SETITEM
    SETITEMS EMPTY_SET ADDITEMS FROZENSET PUT BINPUT LONG_BINPUT GET BINGET LONG_BINGET MEMOIZE""".split()
)
# Outer pickle: data + globals + calls of allowed callables. No INST/OBJ (protocol 0/1 instantiation), EXT*, PERSID.
_OUTER_OPCODES = _DATA_OPCODES | {"GLOBAL", "STACK_GLOBAL", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
# A storage blob never calls anything: only data, the storage-type global and the persistent id of the storage.
_INNER_OPCODES = _DATA_OPCODES | {"GLOBAL", "STACK_GLOBAL", "BINPERSID"}


def _prescan(f: io.BytesIO, allowed: frozenset, where: str) -> None:
    """Walk one pickle (up to STOP) with pickletools, building nothing: refuse opcodes off `allowed`; pickletools
    refuses length fields larger than the remaining bytes and unknown opcodes."""
    try:
        for op, _arg, pos in pickletools.genops(f):
            if op.name not in allowed:
                raise _Reject(f"{where}: opcode {op.name} at byte {pos} is not allowed")
    except ValueError as exc:
        raise _Corrupt(f"{where}: malformed or truncated pickle ({exc})") from None


class _InnerUnpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.pending: dict[str, _PendingStorage] = {}

    def find_class(self, module, name):
        if f"{module}.{name}" in ALLOWED_STORAGE_GLOBALS:
            return _StorageType(_STORAGE_DTYPES[name], f"{module}.{name}")
        raise _Reject(f"global {_printable(f'{module}.{name}')} inside a tensor storage blob is not on the allow-list")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise _Reject(f"tensor storage blob: unexpected persistent id {_brief(pid)}")
        _, storage_type, key, location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise _Reject(f"tensor storage blob: storage type is {_brief(storage_type)}")
        if not (isinstance(key, str) and 0 < len(key) <= 64 and isinstance(location, str) and len(location) <= 64):
            raise _Reject(f"tensor storage blob: bad storage key/location {_brief(pid)}")
        if type(numel) is not int or numel < 0:
            raise _Reject(f"tensor storage blob: bad element count {_brief(numel)}")
        if view_metadata is not None:
            raise _Reject("tensor storage blob: storage views are not supported")
        if key in self.pending:
            return self.pending[key]
        self.pending[key] = _PendingStorage(key, storage_type, location, numel)
        return self.pending[key]


def _parse_storage_blob(blob: bytes) -> _StorageNode:
    """A legacy (non-zip) torch.save stream of one storage (torch/serialization.py `_legacy_save`): magic, protocol,
    sys-info, the storage as BINPERSID, the key list, then per key int64 numel + raw little-endian data."""
    f = io.BytesIO(blob)
    for part in range(5):
        _prescan(f, _INNER_OPCODES, f"tensor storage blob (part {part + 1} of 5)")
    data_start = f.tell()
    f.seek(0)

    def load():
        try:
            return _InnerUnpickler(f).load()
        except (_Reject, _Corrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - any unpickling failure of a blob is a malformed file
            raise _Corrupt(f"tensor storage blob: {type(exc).__name__}: {exc}") from None

    if load() != _LEGACY_MAGIC or load() != _LEGACY_PROTOCOL:
        raise _Corrupt("tensor storage blob: not a legacy torch.save stream (bad magic number or protocol)")
    sys_info = load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise _Corrupt(f"tensor storage blob: unsupported sys-info {_brief(sys_info)} (big-endian writer?)")
    unpickler = _InnerUnpickler(f)
    try:
        storage = unpickler.load()
    except (_Reject, _Corrupt):
        raise
    except Exception as exc:  # noqa: BLE001
        raise _Corrupt(f"tensor storage blob: {type(exc).__name__}: {exc}") from None
    keys = load()
    if not isinstance(storage, _PendingStorage) or keys != [storage.key] or f.tell() != data_start:
        raise _Reject("tensor storage blob: expected exactly one storage and its key")
    header = f.read(8)
    if len(header) != 8 or int.from_bytes(header, "little") != storage.numel:
        raise _Corrupt(f"tensor storage blob: element count does not match the header ({storage.numel})")
    dtype = storage.storage_type.dtype
    itemsize = torch.empty((), dtype=dtype).element_size()
    raw = memoryview(blob)[f.tell() :]
    if len(raw) != storage.numel * itemsize:
        raise _Corrupt(
            f"tensor storage blob: {len(raw)} data bytes for {storage.numel} x {itemsize}-byte elements (truncated?)"
        )
    flat = torch.frombuffer(bytearray(raw), dtype=dtype) if len(raw) else torch.empty(0, dtype=dtype)
    return _StorageNode(flat, storage.location)


# ---------------------------------------------------------------------------------------- stand-ins for the globals


def _check_hooks(hooks, where: str) -> None:
    if not isinstance(hooks, dict) or hooks:
        raise _Reject(f"{where}: backward hooks must be an empty OrderedDict, got {_brief(hooks)}")


def _rebuild_tensor_v2(*args):
    """(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) -> TensorNode."""
    where = "torch._utils._rebuild_tensor_v2"
    if len(args) not in (6, 7):
        raise _Reject(f"{where}: expected 6 or 7 arguments, got {len(args)}")
    storage, offset, size, stride, requires_grad, hooks = args[:6]
    if not isinstance(storage, _StorageNode):
        raise _Reject(f"{where}: storage is a {type(storage).__name__}, not a storage from _load_from_bytes")
    if type(offset) is not int or offset < 0:
        raise _Reject(f"{where}: bad storage offset {_brief(offset)}")
    for name, seq in (("size", size), ("stride", stride)):
        if not (isinstance(seq, tuple) and len(seq) <= 16 and all(type(v) is int and v >= 0 for v in seq)):
            raise _Reject(f"{where}: bad {name} {_brief(seq)}")
    if len(size) != len(stride):
        raise _Reject(f"{where}: size {size} and stride {stride} differ in length")
    if type(requires_grad) is not bool:
        raise _Reject(f"{where}: requires_grad is {_brief(requires_grad)}")
    _check_hooks(hooks, where)
    if len(args) == 7 and args[6] is not None and args[6] != {}:
        raise _Reject(f"{where}: unsupported tensor metadata {_brief(args[6])}")
    available = storage.flat.numel()
    numel = math.prod(size)
    if numel > available:
        raise _Reject(f"{where}: tensor of size {size} ({numel} elements) over a storage of {available} elements")
    if numel > 0:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= available:
            raise _Reject(f"{where}: view (offset {offset}, size {size}, stride {stride}) runs past its storage")
    elif offset > available:
        raise _Reject(f"{where}: storage offset {offset} past the end of its storage ({available})")
    view = torch.as_strided(storage.flat, size, stride, offset)
    if not storage.taken and numel == available and view.is_contiguous():
        storage.taken = True  # the usual case (one tensor per blob, as official files have): no copy
        return TensorNode(view)
    return TensorNode(view.clone(memory_format=torch.contiguous_format))  # owns its memory, shares with no one


def _rebuild_parameter(*args):
    """(data, requires_grad, backward_hooks) -> TensorNode marked as a parameter."""
    where = "torch._utils._rebuild_parameter"
    if len(args) != 3:
        raise _Reject(f"{where}: expected 3 arguments, got {len(args)}")
    data, requires_grad, hooks = args
    if not isinstance(data, TensorNode) or data.is_parameter:
        raise _Reject(f"{where}: data is a {type(data).__name__}, not a rebuilt tensor")
    if type(requires_grad) is not bool:
        raise _Reject(f"{where}: requires_grad is {_brief(requires_grad)}")
    _check_hooks(hooks, where)
    return TensorNode(data.tensor, is_parameter=True)


def _load_from_bytes(*args):
    if len(args) != 1 or not isinstance(args[0], bytes):
        raise _Reject(f"torch.storage._load_from_bytes: expected one bytes argument, got {_brief(args)}")
    return _parse_storage_blob(args[0])


_PERSISTENCE_VERSION = 6


def _reconstruct_persistent_obj(*args):
    """meta = {type: 'class', version: 6, module_src, class_name, state} -> PersistentNode. module_src is ignored."""
    where = "torch_utils.persistence._reconstruct_persistent_obj"
    if len(args) != 1 or not isinstance(args[0], dict):
        raise _Reject(f"{where}: expected one dict argument, got {_brief(args)}")
    meta = args[0]
    missing = {"type", "version", "module_src", "class_name", "state"} - set(meta)
    if missing:
        raise _Reject(f"{where}: meta lacks {sorted(missing)}")
    if meta["type"] != "class":
        raise _Reject(f"{where}: unsupported meta type {_brief(meta['type'])}")
    if meta["version"] != _PERSISTENCE_VERSION:
        raise _Reject(f"{where}: unsupported persistence version {_brief(meta['version'])} (expected 6)")
    if not isinstance(meta["module_src"], str):
        raise _Reject(f"{where}: module_src is not text")
    name = meta["class_name"]
    if not (isinstance(name, str) and name.isidentifier() and len(name) <= 128):
        raise _Reject(f"{where}: bad class name {_brief(name)}")
    if not isinstance(meta["state"], dict):
        raise _Reject(f"{where}: state of {name} is a {type(meta['state']).__name__}, expected a dict")
    return PersistentNode(name, meta["state"])


def _ordered_dict(*args):
    if args:
        raise _Reject(f"collections.OrderedDict called with arguments {_brief(args)}; expected none")
    return OrderedDict()


_NUMPY_SPECS = frozenset("f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1".split())


def _numpy_dtype(*args):
    if not (len(args) == 3 and args[0] in _NUMPY_SPECS and type(args[1]) is bool and type(args[2]) is bool):
        raise _Reject(f"numpy.dtype: only plain numeric dtypes are allowed, got {_brief(args)}")
    return _DTypeNode(args[0])


def _numpy_scalar(*args):
    if not (len(args) == 2 and isinstance(args[0], _DTypeNode) and isinstance(args[1], bytes)):
        raise _Reject(f"numpy scalar: expected (dtype, bytes), got {_brief(args)}")
    dt = args[0].numpy()
    if len(args[1]) != dt.itemsize:
        raise _Reject(f"numpy scalar: {len(args[1])} bytes for a {dt} value")
    return np.frombuffer(args[1], dtype=dt)[0].item()


def _module_class(official: str) -> type:
    return type(official.rsplit(".", 1)[-1], (ModuleNode,), {"__slots__": (), "official_name": official})


_NON_PERSISTENT_MODULES = (
    "training.triplane.OSGDecoder",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.activation.Softplus",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
)

_STAND_INS = {
    "collections.OrderedDict": _ordered_dict,
    "dnnlib.util.EasyDict": _EasyDict,
    "numpy.dtype": _numpy_dtype,
    "numpy._core.multiarray.scalar": _numpy_scalar,  # numpy >= 2 writers
    "numpy.core.multiarray.scalar": _numpy_scalar,  # numpy 1.x writers
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch.storage._load_from_bytes": _load_from_bytes,
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    **{name: _module_class(name) for name in _NON_PERSISTENT_MODULES},
}
ALLOWED_GLOBALS = frozenset(_STAND_INS)


class _OuterUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        qualified = f"{module}.{name}"
        stand_in = _STAND_INS.get(qualified)
        if stand_in is None:
            raise _Reject(f"global {_printable(qualified)} is not on the allow-list")
        return stand_in

    def persistent_load(self, pid):
        raise _Reject("persistent ids are not allowed in a network pickle")


def restricted_loads(data: bytes, source: str = "<bytes>"):
    """Unpickle `data` with the allow-list above. Returns plain containers plus inert nodes (PersistentNode,
    ModuleNode, TensorNode). Raises UnsafePickleError / EG3DPickleError naming `source`."""
    f = io.BytesIO(data)
    try:
        _prescan(f, _OUTER_OPCODES, "network pickle")
        f.seek(0)
        return _OuterUnpickler(f).load()
    except _Reject as exc:
        raise UnsafePickleError(f"unsafe network pickle {source}: {exc}; refusing to load it") from None
    except _Corrupt as exc:
        raise EG3DPickleError(f"cannot read {source}: {exc}") from None
    except RecursionError:
        raise EG3DPickleError(f"cannot read {source}: nesting too deep") from None
    except MemoryError:
        raise EG3DPickleError(f"cannot read {source}: out of memory while unpickling") from None
    except Exception as exc:  # noqa: BLE001 - whatever the C unpickler says about a malformed stream
        raise EG3DPickleError(f"cannot read {source}: malformed pickle ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------------------------------ plain output


@dataclass
class EG3DNetwork:
    """One persistent network (G, D, G_ema) as plain data."""

    class_name: str
    init_args: tuple
    init_kwargs: dict  # EasyDicts turned into dicts, numpy scalars into Python numbers
    state_dict: OrderedDict  # name -> CPU tensor; official names and order (_parameters, _buffers, then _modules)
    attributes: dict = field(default_factory=dict)  # the top object's plain public attributes
    extra_tensors: dict = field(default_factory=dict)  # tensors held as plain attributes (e.g. renderer.plane_axes)
    parameter_names: frozenset = frozenset()  # the state_dict entries that are parameters (the rest are buffers)

    def num_parameters(self) -> int:
        """Trainable values (parameters only, as EG3D counts them: 30,662,136 for FFHQ-512's G_ema)."""
        return sum(t.numel() for k, t in self.state_dict.items() if k in self.parameter_names)


@dataclass
class EG3DSnapshot:
    path: Path
    G_ema: EG3DNetwork
    G: EG3DNetwork | None = None
    D: EG3DNetwork | None = None
    augment_pipe: EG3DNetwork | None = None
    training_set_kwargs: dict | None = None


_MAX_DEPTH = 64
_MAX_ITEMS = 100_000  # plain values or modules per network; a real G_ema has a few hundred


class _Budget:
    def __init__(self, source: str, what: str):
        self.left, self.source, self.what = _MAX_ITEMS, source, what

    def spend(self):
        self.left -= 1
        if self.left < 0:
            raise EG3DPickleError(f"{self.source}: {self.what} is unreasonably large (shared references?)")


def _plain(value, budget: _Budget, depth: int = 0):
    """EasyDict/OrderedDict -> dict, tuples/lists/sets kept; refuses nodes and tensors (ValueError)."""
    budget.spend()
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, dict):
        return {k: _plain(v, budget, depth + 1) for k, v in value.items() if isinstance(k, (str, int))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_plain(v, budget, depth + 1) for v in value)
    raise ValueError(f"{type(value).__name__} is not plain data")


def _module_state(module, path: str, source: str) -> dict:
    state = getattr(module, "state", None)
    if not isinstance(state, dict):
        raise EG3DPickleError(f"{source}: module {path or '<root>'} has no state")
    return state


def _tensor_dict(state: dict, key: str, path: str, source: str) -> dict:
    entries = state.get(key, {})
    if not isinstance(entries, dict) or not all(isinstance(k, str) and k for k in entries):
        raise EG3DPickleError(f"{source}: {path or '<root>'}.{key} is not a dict of named entries")
    return entries


def _collect(root, net: str, source: str) -> tuple[OrderedDict, dict, frozenset]:
    """Flatten a module tree into (state_dict, extra_tensors): per module its _parameters, then its persistent
    _buffers, then each child in _modules order; names joined with '.' like torch's state_dict()."""
    out: OrderedDict = OrderedDict()
    extra: dict = {}
    params: set = set()
    budget = _Budget(source, f"{net}'s module tree")

    def walk(module, prefix: str, ancestors: tuple):
        budget.spend()
        path = prefix[:-1]
        if len(ancestors) > _MAX_DEPTH or any(module is a for a in ancestors):
            raise EG3DPickleError(f"{source}: {net}: module tree is cyclic or too deep at {path!r}")
        state = _module_state(module, path, source)
        skip = state.get("_non_persistent_buffers_set", set())
        if not isinstance(skip, (set, frozenset)):
            raise EG3DPickleError(f"{source}: {net}.{path}: _non_persistent_buffers_set is not a set")
        for kind in ("_parameters", "_buffers"):
            for name, value in _tensor_dict(state, kind, path, source).items():
                if value is None or (kind == "_buffers" and name in skip):
                    continue
                if not isinstance(value, TensorNode):
                    raise EG3DPickleError(f"{source}: {net}: {prefix}{name} is a {type(value).__name__}, not a tensor")
                out[prefix + name] = value.tensor
                if kind == "_parameters":
                    params.add(prefix + name)
        for name, value in state.items():
            if isinstance(value, TensorNode) and isinstance(name, str) and not name.startswith("_"):
                extra[prefix + name] = value.tensor
        for name, child in _tensor_dict(state, "_modules", path, source).items():
            if child is None:
                continue
            if not isinstance(child, (PersistentNode, ModuleNode)):
                raise EG3DPickleError(f"{source}: {net}: {prefix}{name} is a {type(child).__name__}, not a module")
            walk(child, f"{prefix}{name}.", ancestors + (module,))

    walk(root, "", ())
    return out, extra, frozenset(params)


def _network(node, net: str, source: str) -> EG3DNetwork:
    if not isinstance(node, PersistentNode):
        raise EG3DPickleError(f"{source}: {net!r} is a {type(node).__name__}, not an EG3D network")
    state = node.state
    budget = _Budget(source, f"{net}'s constructor arguments")
    try:
        init_kwargs = _plain(state.get("_init_kwargs", {}), budget)
        init_args = _plain(state.get("_init_args", ()), budget)
    except ValueError as exc:
        raise EG3DPickleError(f"{source}: {net}'s constructor arguments are not plain data ({exc})") from None
    if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
        raise EG3DPickleError(f"{source}: {net}'s _init_kwargs / _init_args are malformed")
    attributes = {}
    for name, value in state.items():
        if isinstance(name, str) and not name.startswith("_") and name != "training":
            try:
                attributes[name] = _plain(value, budget)
            except ValueError:
                pass  # tensors, sub-objects: not attributes in this sense
    state_dict, extra, params = _collect(node, net, source)
    return EG3DNetwork(node.class_name, tuple(init_args), init_kwargs, state_dict, attributes, extra, params)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise EG3DPickleError(f"network pickle not found: {path}")
    if path.is_dir():
        raise EG3DPickleError(f"{path} is a folder, not a network pickle")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EG3DPickleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise EG3DPickleError(f"{path} is empty, not a network pickle")
    if data[:1] != b"\x80":
        hint = " (a zip archive: a torch.save checkpoint or a dataset?)" if data[:2] == b"PK" else ""
        raise EG3DPickleError(f"{path} is not a network pickle{hint}: it starts with {data[:8]!r}")
    return data


def read_network_pickle(path: str | os.PathLike) -> EG3DSnapshot:
    """Read an official EG3D snapshot without running its code. G_ema is required; G, D, augment_pipe are read when
    present. Raises UnsafePickleError for anything off the allow-list, EG3DPickleError for malformed files."""
    path = Path(path)
    tree = restricted_loads(_read_bytes(path), source=str(path))
    if not isinstance(tree, dict):
        raise EG3DPickleError(f"{path}: top level is a {type(tree).__name__}, expected a dict with G, D and G_ema")
    if "G_ema" not in tree:
        keys = ", ".join(repr(k) for k in list(tree)[:8])
        raise EG3DPickleError(f"{path}: no 'G_ema' network in this pickle (top-level keys: {keys or 'none'})")
    nets = {name: _network(tree[name], name, str(path)) if tree.get(name) is not None else None for name in ("G", "D")}
    augment = tree.get("augment_pipe")
    tsk = tree.get("training_set_kwargs")
    try:
        tsk = _plain(tsk, _Budget(str(path), "training_set_kwargs")) if isinstance(tsk, dict) else None
    except ValueError:
        tsk = None
    return EG3DSnapshot(
        path=path,
        G_ema=_network(tree["G_ema"], "G_ema", str(path)),
        G=nets["G"],
        D=nets["D"],
        augment_pipe=_network(augment, "augment_pipe", str(path)) if isinstance(augment, PersistentNode) else None,
        training_set_kwargs=tsk,
    )
