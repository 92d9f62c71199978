"""Test helper: write pickles with the byte structure of an official EG3D network snapshot (NVlabs/eg3d
`torch_utils/persistence.py` and `legacy.py`; core/io/eg3d_pickle.py reads it), for any config,
without importing dnnlib / torch_utils / training, and hostile variants of them.

Global references to the official names are emitted by a pure-Python Pickler whose save_global writes
STACK_GLOBAL (protocol 4) or GLOBAL (protocol 2) for `GlobalRef`s and for stand-in classes carrying `_official`,
instead of importing the named module. CPU tensors are pickled by torch itself (so their bytes are exactly torch's:
_rebuild_parameter / _rebuild_tensor_v2 over _load_from_bytes of a legacy torch.save stream); `CudaTensor` writes the
same structure by hand with location 'cuda:0' and torch.cuda.FloatStorage, as real snapshots likely hold for
renderer.plane_axes.

    write_snapshot(path, g_state, g_kwargs, sentinel=tmp_path / "pwned")
"""

from __future__ import annotations

import collections
import copy
import io
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from tristudio.core.eg3d.presets import FFHQ_RENDERING_KWARGS

# --------------------------------------------------------------------------------------------- pickler machinery


class GlobalRef:
    """A reference to `module.name` that pickles as a global without importing it. Callable only to please
    save_reduce's check; calling it is an error."""

    _cache: dict = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"GlobalRef {self.module}.{self.name} is not callable")

    def __repr__(self):
        return f"GlobalRef({self.module}.{self.name})"


def ref(qualified: str) -> GlobalRef:
    module, name = qualified.rsplit(".", 1)
    return GlobalRef(module, name)


class FixturePickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    def reducer_override(self, obj):
        if isinstance(obj, GlobalRef) or (isinstance(obj, type) and "_official" in obj.__dict__):
            return "global"  # a str makes save() call self.save_global(obj, ...)
        return NotImplemented

    def save_global(self, obj, name=None):
        target = obj if isinstance(obj, GlobalRef) else obj.__dict__.get("_official") if isinstance(obj, type) else None
        if target is None:
            return super().save_global(obj, name)
        if self.proto >= 4:
            self.save(target.module)
            self.save(target.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{target.module}\n{target.name}\n".encode())
        self.memoize(obj)


def dumps(obj, protocol: int = 4, persistent_id=None) -> bytes:
    f = io.BytesIO()
    p = FixturePickler(f, protocol=protocol)
    if persistent_id is not None:
        p.persistent_id = persistent_id
    p.dump(obj)
    return f.getvalue()


class EasyDict(dict):
    """Pickles as dnnlib.util.EasyDict (NEWOBJ + SETITEMS, like the real one)."""

    _official = GlobalRef("dnnlib.util", "EasyDict")


class Reduce:
    """An object that pickles as `func(*args)` (REDUCE), optionally followed by BUILD(state)."""

    def __init__(self, func, args: tuple, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)

    def __call__(self, *args, **kwargs):  # so a Reduce can itself be the callable of another Reduce
        raise RuntimeError("fixture objects are not callable")


_NONPERSISTENT_CLASSES: dict[str, type] = {}


def nonpersistent(official: str, state: dict):
    """An object pickled by reference as `official` (NEWOBJ + BUILD(state)), like an nn.Module without persistence."""
    if official not in _NONPERSISTENT_CLASSES:
        cls = type(official.rsplit(".", 1)[-1], (_NonPersistent,), {"_official": ref(official)})
        _NONPERSISTENT_CLASSES[official] = cls
    obj = _NONPERSISTENT_CLASSES[official].__new__(_NONPERSISTENT_CLASSES[official])
    obj.__dict__.update(state)
    return obj


class _NonPersistent:
    pass


RECONSTRUCT = ref("torch_utils.persistence._reconstruct_persistent_obj")


def persistent(class_name: str, state: dict, module_src: str, *, version: int = 6, type_: str = "class"):
    """A persistent EG3D object: (_reconstruct_persistent_obj, (meta,), None)."""
    meta = dict(type=type_, version=version, module_src=module_src, class_name=class_name, state=state)
    return _Persistent(meta)


class _Persistent:
    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (RECONSTRUCT, (self.meta,), None)


def sentinel_source(sentinel: Path | None) -> str:
    """Stand-in for the module source an EG3D pickle carries. If anything exec'd it, `sentinel` would appear."""
    lines = ["# tristudio test fixture: stands in for training/networks_stylegan2.py; it must never run.", ""]
    if sentinel is not None:
        lines += ["import pathlib", f"pathlib.Path({str(sentinel)!r}).write_text('module_src was executed')", ""]
    return "\n".join(lines + ["class Placeholder:", "    pass", ""])


# ---------------------------------------------------------------------------------------- legacy storage blobs

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_NAMES = {torch.float32: "FloatStorage", torch.float16: "HalfStorage", torch.float64: "DoubleStorage"}


def legacy_storage_blob(t: torch.Tensor, location: str = "cpu", storage_module: str = "torch", key: str = "0") -> bytes:
    """torch.save(t's storage, _use_new_zipfile_serialization=False), written by hand (the stream that
    core/io/eg3d_pickle.py parses)."""
    t = t.detach().contiguous()
    storage_type = GlobalRef(storage_module, _STORAGE_NAMES[t.dtype])
    parts = [dumps(LEGACY_MAGIC, 2), dumps(1001, 2)]
    parts.append(
        dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, 2)
    )
    marker = object()
    parts.append(
        dumps(marker, 2, lambda o: ("storage", storage_type, key, location, t.numel(), None) if o is marker else None)
    )
    parts.append(dumps([key], 2))
    parts.append(t.numel().to_bytes(8, "little") + t.numpy().tobytes())
    return b"".join(parts)


class CudaTensor(Reduce):
    """A plain tensor whose storage was saved on 'cuda:0' as torch.cuda.FloatStorage."""

    def __init__(self, t: torch.Tensor, location: str = "cuda:0"):
        blob = Reduce(ref("torch.storage._load_from_bytes"), (legacy_storage_blob(t, location, "torch.cuda"),))
        size = tuple(t.shape)
        stride = tuple(t.contiguous().stride())
        super().__init__(ref("torch._utils._rebuild_tensor_v2"), (blob, 0, size, stride, False, OrderedDict()))


# ------------------------------------------------------------------------------------------- module trees

_MODULE_DICT = torch.nn.Module().__dict__  # the exact internal attributes this torch version pickles


def module_state(params=None, buffers=None, modules=None, attrs=None, init_kwargs=None) -> dict:
    """An nn.Module __dict__ as torch 2.x pickles it, plus EG3D's persistence bookkeeping."""
    state = copy.deepcopy(_MODULE_DICT)
    state["training"] = False
    state["_parameters"] = dict(params or {})
    state["_buffers"] = dict(buffers or {})
    state["_modules"] = dict(modules or {})
    state.update(attrs or {})
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs if init_kwargs is not None else {}
    return state


BUFFER_NAMES = {"resample_filter", "noise_const", "w_avg"}


def _g_class(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    if path == "":
        return "TriPlaneGenerator"
    if path == "backbone":
        return "Generator"
    if path == "backbone.synthesis":
        return "SynthesisNetwork"
    if path.endswith("mapping"):
        return "MappingNetwork"
    if leaf in ("conv0", "conv1"):
        return "SynthesisLayer"
    if leaf == "torgb":
        return "ToRGBLayer"
    if leaf.startswith("b") and leaf[1:].isdigit() or leaf.startswith("block"):
        return "SynthesisBlock"
    return "FullyConnectedLayer"


def _d_class(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    if path == "":
        return "DualDiscriminator"
    if path == "mapping":
        return "MappingNetwork"
    if path == "b4":
        return "DiscriminatorEpilogue"
    if leaf.startswith("b") and leaf[1:].isdigit():
        return "DiscriminatorBlock"
    if leaf in ("fromrgb", "conv0", "conv1", "skip", "conv"):
        return "Conv2dLayer"
    return "FullyConnectedLayer"


_NONPERSISTENT_PATHS = {
    "decoder": "training.triplane.OSGDecoder",
    "decoder.net": "torch.nn.modules.container.Sequential",
}


def _attrs_for(class_name: str, params: dict) -> dict:
    """A few of the real per-class attributes, so numpy float64 scalars appear where they do in real files."""
    w = params.get("weight")
    if class_name == "FullyConnectedLayer" and w is not None:
        return {
            "in_features": w.shape[1],
            "out_features": w.shape[0],
            "activation": "linear",
            "weight_gain": np.float64(1.0 / np.sqrt(w.shape[1])),
            "bias_gain": 1,
        }
    if class_name == "SynthesisLayer":
        return {"activation": "lrelu", "conv_clamp": None, "act_gain": np.float64(np.sqrt(2.0))}
    if class_name in ("ToRGBLayer", "Conv2dLayer") and w is not None:
        return {"weight_gain": np.float64(1.0 / np.sqrt(w[0].numel()))}
    return {}


def build_tree(state_dict: dict, classify, module_src: str, top_attrs=None, top_kwargs=None, extra_children=None):
    """Turn a flat state dict into nested persistent/non-persistent objects (children in first-appearance order).
    extra_children: {path: object} modules without parameters, inserted before the others at that path."""
    tree: dict = {"params": {}, "buffers": {}, "children": {}}
    for children_path, _ in (extra_children or {}).items():
        parent, _, leaf = children_path.rpartition(".")
        node = tree
        for part in filter(None, parent.split(".")):
            node = node["children"].setdefault(part, {"params": {}, "buffers": {}, "children": {}})
        node["children"][leaf] = ("extra", children_path)
    for key, value in state_dict.items():
        *mods, leaf = key.split(".")
        node = tree
        for part in mods:
            node = node["children"].setdefault(part, {"params": {}, "buffers": {}, "children": {}})
        kind = "buffers" if leaf in BUFFER_NAMES else "params"
        node[kind][leaf] = value

    def make(node, path):
        if isinstance(node, tuple):
            return extra_children[node[1]]
        children = {name: make(child, f"{path}.{name}" if path else name) for name, child in node["children"].items()}
        if path == "decoder.net":  # Sequential(FC, Softplus, FC): the activation has no parameters
            children = {str(i): children.get(str(i)) for i in range(max(int(k) for k in children) + 1)}
            children = {
                k: v
                if v is not None
                else nonpersistent(
                    "torch.nn.modules.activation.Softplus", module_state(attrs={"beta": 1.0, "threshold": 20.0})
                )
                for k, v in children.items()
            }
        params = {
            k: torch.nn.Parameter(v, requires_grad=False) if isinstance(v, torch.Tensor) else v
            for k, v in node["params"].items()
        }
        class_name = classify(path)
        attrs = dict(top_attrs or {}) if path == "" else _attrs_for(class_name, node["params"])
        state = module_state(params, node["buffers"], children, attrs, top_kwargs if path == "" else {})
        if path in _NONPERSISTENT_PATHS:
            state.pop("_init_args"), state.pop("_init_kwargs")
            return nonpersistent(_NONPERSISTENT_PATHS[path], state)
        return persistent(class_name, state, module_src)

    return make(tree, "")


def renderer_modules(cuda: bool = False) -> dict:
    """renderer (ImportanceRenderer with ray_marcher and a plain plane_axes tensor) and ray_sampler, as in G."""
    axes = torch.tensor(
        [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 0, 1], [1, 0, 0], [0, 1, 0]]],
        dtype=torch.float32,
    )
    marcher = nonpersistent("training.volumetric_rendering.ray_marcher.MipRayMarcher2", module_state())
    renderer_state = module_state(
        modules={"ray_marcher": marcher}, attrs={"plane_axes": CudaTensor(axes) if cuda else axes}
    )
    for k in ("_init_args", "_init_kwargs"):
        renderer_state.pop(k)
    sampler_state = module_state(
        attrs=dict.fromkeys(["ray_origins_h", "ray_directions", "depths", "image_coords", "rendering_options"])
    )
    for k in ("_init_args", "_init_kwargs"):
        sampler_state.pop(k)
    return {
        "renderer": nonpersistent("training.volumetric_rendering.renderer.ImportanceRenderer", renderer_state),
        "ray_sampler": nonpersistent("training.volumetric_rendering.ray_sampler.RaySampler", sampler_state),
    }


def easy(value):
    """Official-style init kwargs: mapping_kwargs and sr_kwargs as EasyDicts."""
    out = dict(value)
    for k in ("mapping_kwargs", "sr_kwargs"):
        if isinstance(out.get(k), dict):
            out[k] = EasyDict(out[k])
    return out


def generator_object(state_dict, init_kwargs, module_src, neural_rendering_resolution=64, cuda=False):
    attrs = {k: init_kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    attrs.update(
        neural_rendering_resolution=neural_rendering_resolution,
        rendering_kwargs=dict(init_kwargs["rendering_kwargs"]),
        _last_planes=None,
    )
    sr_class = str(init_kwargs["rendering_kwargs"]["superresolution_module"]).rsplit(".", 1)[-1]

    def classify(path: str) -> str:
        return sr_class if path == "superresolution" else _g_class(path)

    return build_tree(state_dict, classify, module_src, attrs, easy(init_kwargs), renderer_modules(cuda))


# ------------------------------------------------------------------------------------------- small configs

TINY_KWARGS = dict(
    z_dim=16,
    c_dim=25,
    w_dim=16,
    img_resolution=32,
    img_channels=3,
    sr_num_fp16_res=0,
    mapping_kwargs={"num_layers": 2},
    # the official FFHQ rendering kwargs, at this network's image size and a few samples per ray
    rendering_kwargs={
        **copy.deepcopy(FFHQ_RENDERING_KWARGS),
        "image_resolution": 32,
        "depth_resolution": 8,
        "depth_resolution_importance": 8,
    },
    sr_kwargs={"channel_base": 256, "channel_max": 16, "fused_modconv_default": "inference_only"},
    channel_base=256,
    channel_max=16,
    fused_modconv_default="inference_only",
    num_fp16_res=0,
    conv_clamp=None,
)


def g_state_spec(
    plane_res: int = 16,
    plane_ch: int = 8,
    sr_in: int = 8,
    feat: int = 8,
    channel_base: int = 256,
    channel_max: int = 16,
    w_dim: int = 16,
    z_dim: int = 16,
    c_dim: int = 25,
    map_layers: int = 2,
    img_res: int = 32,
) -> OrderedDict:
    """Names and shapes of a TriPlaneGenerator state dict in official order (as tests/data/eg3d_ffhq512_state_dict.txt
    lists it for FFHQ-512), for a small config: backbone at plane_res with 3*plane_ch channels, SR from sr_in to
    img_res in two SynthesisBlocks."""
    spec: OrderedDict = OrderedDict()

    def ch(res):
        return min(channel_base // res, channel_max)

    def layer(prefix, cin, cout, res):
        spec.update(
            {
                f"{prefix}.weight": (cout, cin, 3, 3),
                f"{prefix}.noise_strength": (),
                f"{prefix}.bias": (cout,),
                f"{prefix}.resample_filter": (4, 4),
                f"{prefix}.noise_const": (res, res),
                f"{prefix}.affine.weight": (cin, w_dim),
                f"{prefix}.affine.bias": (cin,),
            }
        )

    def torgb(prefix, cin, cout):
        spec.update(
            {
                f"{prefix}.weight": (cout, cin, 1, 1),
                f"{prefix}.bias": (cout,),
                f"{prefix}.affine.weight": (cin, w_dim),
                f"{prefix}.affine.bias": (cin,),
            }
        )

    res, prev = 4, 0
    while res <= plane_res:
        p = f"backbone.synthesis.b{res}"
        if res == 4:
            spec[f"{p}.const"] = (ch(4), 4, 4)
            spec[f"{p}.resample_filter"] = (4, 4)
            layer(f"{p}.conv1", ch(4), ch(4), 4)
        else:
            spec[f"{p}.resample_filter"] = (4, 4)
            layer(f"{p}.conv0", prev, ch(res), res)
            layer(f"{p}.conv1", ch(res), ch(res), res)
        torgb(f"{p}.torgb", ch(res), 3 * plane_ch)
        prev, res = ch(res), res * 2
    spec["backbone.mapping.w_avg"] = (w_dim,)
    spec["backbone.mapping.embed.weight"] = (w_dim, c_dim)
    spec["backbone.mapping.embed.bias"] = (w_dim,)
    for i in range(map_layers):
        spec[f"backbone.mapping.fc{i}.weight"] = (w_dim, z_dim + w_dim if i == 0 else w_dim)
        spec[f"backbone.mapping.fc{i}.bias"] = (w_dim,)
    for i, (cin, res) in enumerate([(feat, sr_in * 2), (ch(sr_in * 2), img_res)]):
        p = f"superresolution.block{i}"
        spec[f"{p}.resample_filter"] = (4, 4)
        layer(f"{p}.conv0", cin, ch(res), res)
        layer(f"{p}.conv1", ch(res), ch(res), res)
        torgb(f"{p}.torgb", ch(res), 3)
    spec.update(
        {
            "decoder.net.0.weight": (16, plane_ch),
            "decoder.net.0.bias": (16,),
            "decoder.net.2.weight": (1 + feat, 16),
            "decoder.net.2.bias": (1 + feat,),
        }
    )
    return spec


def d_state_spec(
    img_res: int = 32, c_dim: int = 25, channel_base: int = 256, channel_max: int = 16, map_layers: int = 8
) -> OrderedDict:
    """A small DualDiscriminator state dict (the official structure: FFHQ512_D_KEYS in tests/test_discriminator.py)."""

    def ch(res):
        return min(channel_base // res, channel_max)

    spec: OrderedDict = OrderedDict(resample_filter=(4, 4))
    res = img_res
    while res > 4:
        p, cin, cout = f"b{res}", ch(res), ch(res // 2)
        spec[f"{p}.resample_filter"] = (4, 4)
        if res == img_res:
            spec.update(
                {
                    f"{p}.fromrgb.weight": (cin, 6, 1, 1),
                    f"{p}.fromrgb.bias": (cin,),
                    f"{p}.fromrgb.resample_filter": (4, 4),
                }
            )
        spec.update(
            {
                f"{p}.conv0.weight": (cin, cin, 3, 3),
                f"{p}.conv0.bias": (cin,),
                f"{p}.conv0.resample_filter": (4, 4),
                f"{p}.conv1.weight": (cout, cin, 3, 3),
                f"{p}.conv1.bias": (cout,),
                f"{p}.conv1.resample_filter": (4, 4),
                f"{p}.skip.weight": (cout, cin, 1, 1),
                f"{p}.skip.resample_filter": (4, 4),
            }
        )
        res //= 2
    cmap = ch(4)
    spec.update({"mapping.embed.weight": (cmap, c_dim), "mapping.embed.bias": (cmap,)})
    for i in range(map_layers):
        spec.update({f"mapping.fc{i}.weight": (cmap, cmap), f"mapping.fc{i}.bias": (cmap,)})
    spec.update(
        {
            "b4.conv.weight": (ch(4), ch(4) + 1, 3, 3),
            "b4.conv.bias": (ch(4),),
            "b4.conv.resample_filter": (4, 4),
            "b4.fc.weight": (ch(4), ch(4) * 16),
            "b4.fc.bias": (ch(4),),
            "b4.out.weight": (cmap, ch(4)),
            "b4.out.bias": (cmap,),
        }
    )
    return spec


def random_state(spec: dict, seed: int = 0) -> OrderedDict:
    g = torch.Generator().manual_seed(seed)
    return OrderedDict((k, torch.randn(shape, generator=g)) for k, shape in spec.items())


D_KWARGS = dict(
    c_dim=25,
    img_resolution=32,
    img_channels=3,
    architecture="resnet",
    channel_base=256,
    channel_max=16,
    num_fp16_res=0,
    conv_clamp=None,
    disc_c_noise=0,
    block_kwargs={"freeze_layers": 0},
    mapping_kwargs={},
    epilogue_kwargs={"mbstd_group_size": 4},
)
TRAINING_SET_KWARGS = {
    "class_name": "training.dataset.ImageFolderDataset",
    "path": "/data/FFHQ_32.zip",
    "use_labels": True,
    "max_size": 70000,
    "xflip": True,
    "resolution": 32,
    "random_seed": 0,
}


def snapshot_dict(
    g_ema_state,
    g_kwargs,
    *,
    d_state=None,
    sentinel=None,
    cuda=False,
    neural_rendering_resolution=16,
    g_state=None,
    drop=(),
):
    """The top-level snapshot dict (training_set_kwargs, G, D, G_ema, augment_pipe) ready for `dumps`."""
    src = sentinel_source(sentinel)
    nrr = neural_rendering_resolution
    if g_state is None:
        g_state = OrderedDict(
            (k, v + 0.01) if v.is_floating_point() else (k, v.clone()) for k, v in g_ema_state.items()
        )
    d_state = d_state if d_state is not None else random_state(d_state_spec(), seed=1)
    d_obj = build_tree(
        d_state,
        _d_class,
        src,
        {"c_dim": 25, "img_resolution": 32, "img_channels": 6},
        {k: EasyDict(v) if isinstance(v, dict) else v for k, v in D_KWARGS.items()},
    )
    snap = {
        "training_set_kwargs": dict(TRAINING_SET_KWARGS),
        "G": generator_object(g_state, g_kwargs, src, nrr, cuda),
        "D": d_obj,
        "G_ema": generator_object(g_ema_state, g_kwargs, src, nrr, cuda),
        "augment_pipe": None,
    }
    for k in drop:
        snap.pop(k)
    return snap


def write_snapshot(path: Path, g_ema_state, g_kwargs, **kwargs) -> Path:
    path = Path(path)
    path.write_bytes(dumps(snapshot_dict(g_ema_state, g_kwargs, **kwargs), protocol=4))
    return path


# ------------------------------------------------------------------------------------------- inspection


def global_names(data: bytes) -> collections.Counter:
    """Every global a pickle references (GLOBAL args and STACK_GLOBAL's two preceding strings), with counts."""
    names: collections.Counter = collections.Counter()
    memo: list = []
    recent: list = []
    for op, arg, _pos in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            recent.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo[int(arg)] if int(arg) < len(memo) else None)
        elif op.name == "MEMOIZE":
            memo.append(recent[-1] if recent else None)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            while len(memo) <= int(arg):
                memo.append(None)
            memo[int(arg)] = recent[-1] if recent else None
        elif op.name == "GLOBAL":
            names[arg.replace(" ", ".")] += 1
        elif op.name == "STACK_GLOBAL":
            names[f"{recent[-2]}.{recent[-1]}"] += 1
        else:
            recent.append(None)
    return names


def storage_blobs(data: bytes) -> list[bytes]:
    """The BINBYTES arguments of a snapshot (each one a legacy torch.save stream)."""
    return [
        arg
        for op, arg, _ in pickletools.genops(data)
        if op.name in ("SHORT_BINBYTES", "BINBYTES", "BINBYTES8") and arg[:4] == b"\x80\x02\x8a\x0a"
    ]


def blob_globals(blob: bytes) -> collections.Counter:
    names: collections.Counter = collections.Counter()
    f = io.BytesIO(blob)
    for _ in range(5):
        for op, arg, _pos in pickletools.genops(f):
            if op.name == "GLOBAL":
                names[arg.replace(" ", ".")] += 1
    return names


def blob_location(blob: bytes) -> str:
    f = io.BytesIO(blob)
    strings = []
    for _ in range(4):
        strings = [arg for op, arg, _ in pickletools.genops(f) if op.name == "BINUNICODE"]
    return strings[-1]


# ------------------------------------------------------------------------------------ from a real generator


def tiny_generator(seed: int = 0):
    """tristudio's TriPlaneGenerator with the `tiny` preset, random weights (non-zero noise strengths)."""
    from tristudio.core.eg3d.generator import TriPlaneGenerator
    from tristudio.core.eg3d.presets import preset

    torch.manual_seed(seed)
    G = TriPlaneGenerator(**preset("tiny")).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    return G


def official_parts(G):
    """(state_dict, official-style init kwargs, neural_rendering_resolution) of a TriPlaneGenerator, as a snapshot
    stores them (neural_rendering_resolution is an attribute there, not a constructor argument)."""
    kwargs = copy.deepcopy(G.init_kwargs)
    nrr = kwargs.pop("neural_rendering_resolution", G.neural_rendering_resolution)
    state = OrderedDict((k, v.detach().clone()) for k, v in G.state_dict().items())
    return state, kwargs, nrr


def write_generator_snapshot(path: Path, G, **kwargs) -> Path:
    state, g_kwargs, nrr = official_parts(G)
    return write_snapshot(path, state, g_kwargs, neural_rendering_resolution=nrr, **kwargs)
