"""Load and save EG3D generators: official network pickles (read without running their code) and tristudio model
folders (our one checkpoint format).

    G = load_generator("ffhq512-128.pkl")          # official snapshot: its G_ema, via the restricted unpickler
    G = load_generator("models/ffhq512")            # tristudio folder: model.safetensors + model.json
    G = load_generator(None)                        # the shipped model (default_model_path())
    save_generator(G, "models/mine")
    summary = convert_pickle("ffhq512-128.pkl", "models/ffhq512")

A model folder holds `model.safetensors` (G_ema's state dict, official key names) and `model.json`:
{"format": "tristudio-eg3d", "version": 1, "init_kwargs": {...}, "neural_rendering_resolution": R, "source": ...}.
Our own folders are read only through core/io/checkpoint.py (never a pickle). Every load checks the settings
(`check_sizes`, `check_rendering`: one line naming the file and the field), builds `TriPlaneGenerator(**init_kwargs)`,
checks names, shapes and finiteness, then loads the state dict strictly.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import torch

from ..io.assets import shipped_eg3d_path
from ..io.checkpoint import CheckpointError, checkpoint_exists, file_sha256, load_checkpoint, save_checkpoint
from ..io.eg3d_pickle import EG3DPickleError, EG3DSnapshot, UnsafePickleError, read_network_pickle
from ..io.training_run import run_export

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GeneratorLoadError",
    "ModelNotFoundError",
    "EG3DPickleError",
    "UnsafePickleError",
    "CheckpointError",
    "LOAD_ERRORS",
    "default_model_path",
    "load_generator",
    "load_eg3d_pickle_raw",
    "build_generator",
    "save_generator",
    "convert_pickle",
]

FORMAT = "tristudio-eg3d"
FORMAT_VERSION = 1
MODEL_NAME = "model"  # model.safetensors + model.json


class GeneratorLoadError(ValueError):
    """Weights or settings that do not make a valid TriPlaneGenerator."""


class ModelNotFoundError(GeneratorLoadError, FileNotFoundError):
    """No model at the given path (or no shipped model yet)."""


# Everything a bad input can raise; the CLI turns these into one red line.
LOAD_ERRORS = (GeneratorLoadError, EG3DPickleError, CheckpointError, OSError)


def default_model_path() -> Path:
    """The shipped EG3D model: tristudio/core/assets/eg3d_heads/ (a model folder, or the first sub-folder, by name,
    that is one). Raises ModelNotFoundError while none is shipped."""
    root = shipped_eg3d_path()
    if checkpoint_exists(root, MODEL_NAME):
        return root
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if checkpoint_exists(sub, MODEL_NAME):
                return sub
    raise ModelNotFoundError(
        f"no shipped EG3D model yet: expected model.json + model.safetensors in {root}; pass a model path "
        "(a tristudio model folder, or an official EG3D .pkl; `tristudio convert` turns one into a folder)"
    )


def load_generator(path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """A TriPlaneGenerator in eval mode without gradients, from an official EG3D pickle (its G_ema), a tristudio
    model folder (or its model.json / model.safetensors), a `train eg3d` run folder (its newest exported model), or
    None for the shipped model."""
    path = default_model_path() if path is None else Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"model not found: {path}")
    if path.is_file() and path.suffix in (".json", ".safetensors"):
        path = path.parent
    if path.is_dir():
        G = _load_folder(run_export(path, "eg3d"))  # a `train eg3d` run: its RUN/model
    else:
        G = _generator_from_snapshot(read_network_pickle(path), path)
    return G.to(device)


def load_eg3d_pickle_raw(path: str | os.PathLike) -> EG3DSnapshot:
    """The whole snapshot as plain data (G, D, G_ema: class name, init kwargs, state dict; training_set_kwargs)."""
    return read_network_pickle(path)


def _load_folder(folder: Path):
    if not checkpoint_exists(folder, MODEL_NAME):
        raise GeneratorLoadError(
            f"{folder} is not a tristudio model folder (it needs model.json and model.safetensors); "
            "for an official EG3D network pickle pass the .pkl file itself"
        )
    tensors, meta = load_checkpoint(folder, MODEL_NAME, check_finite=False)  # CheckpointError on corrupt files
    source = folder / f"{MODEL_NAME}.json"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GeneratorLoadError(f"{source}: not a {FORMAT} model (format {_get(meta, 'format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise GeneratorLoadError(
            f"{source}: format version {meta.get('version')!r} is not supported (this tristudio reads {FORMAT_VERSION})"
        )
    if not isinstance(meta.get("init_kwargs"), dict):
        raise GeneratorLoadError(f"{source}: 'init_kwargs' is missing or not an object")
    return build_generator(meta["init_kwargs"], tensors, meta.get("neural_rendering_resolution"), source)


def _get(meta, key):
    return meta.get(key) if isinstance(meta, dict) else None


def _generator_from_snapshot(snap: EG3DSnapshot, path: Path):
    net = snap.G_ema
    source = f"{path} (G_ema)"
    if net.class_name != "TriPlaneGenerator":
        raise GeneratorLoadError(f"{source} is a {net.class_name}, not an EG3D TriPlaneGenerator")
    return build_generator(net.init_kwargs, net.state_dict, net.attributes.get("neural_rendering_resolution"), source)


def check_finite(state_dict: dict, source) -> None:
    for key, t in state_dict.items():
        if not t.is_floating_point() or torch.isfinite(t.sum()):  # a finite sum means every value is finite
            continue
        if not torch.isfinite(t).all():  # (the sum can also overflow: check element-wise)
            bad = int((~torch.isfinite(t)).sum())
            raise GeneratorLoadError(f"{source}: weight {key!r} holds NaN or Inf ({bad} of {t.numel()} values)")


def _check_state(expected: dict, got: dict, source) -> None:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [
        f"{k} {tuple(got[k].shape)} (model wants {tuple(v.shape)})"
        for k, v in expected.items()
        if k in got and tuple(got[k].shape) != tuple(v.shape)
    ]
    not_float = [k for k in expected if k in got and not got[k].is_floating_point()]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", wrong),
        ("not floating point", not_float),
    ):
        if items:
            more = f", ... {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        raise GeneratorLoadError(
            f"{source}: weights do not fit the TriPlaneGenerator its settings describe ({'; '.join(problems)})"
        )


# Bounds on the sizes a model's settings may ask for (far above any EG3D: ffhq512 has img_resolution 512, planes 256,
# w_dim 512, channel_base 32768, 48 + 48 ray samples); a field outside them is a corrupt or hostile file, refused
# before anything is allocated. (field path, low, high, power of two). `train eg3d` bounds its ray samples by the same
# MAX_RAY_SAMPLES, so every model it exports loads.
MAX_RAY_SAMPLES = 1024
SIZE_BOUNDS = [
    (("img_resolution",), 4, 4096, True),
    (("plane_resolution",), 4, 2048, True),
    (("neural_rendering_resolution",), 4, 4096, False),
    (("plane_channels",), 1, 1024, False),
    (("img_channels",), 1, 4, False),
    (("z_dim",), 1, 4096, False),
    (("w_dim",), 1, 4096, False),
    (("c_dim",), 0, 4096, False),
    (("channel_base",), 1, 1 << 17, False),
    (("channel_max",), 1, 4096, False),
    (("sr_num_fp16_res",), 0, 16, False),
    (("num_fp16_res",), 0, 16, False),
    (("mapping_kwargs", "num_layers"), 0, 64, False),
    (("rendering_kwargs", "image_resolution"), 4, 4096, True),
    (("rendering_kwargs", "depth_resolution"), 1, MAX_RAY_SAMPLES, False),
    (("rendering_kwargs", "depth_resolution_importance"), 0, MAX_RAY_SAMPLES, False),
]


def check_sizes(init_kwargs: dict, source) -> None:
    """One line naming the file and the field when a size setting is of the wrong type or out of bounds."""
    for path, low, high, pow2 in SIZE_BOUNDS:
        value = init_kwargs
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        name = ".".join(("init_kwargs", *path))
        if type(value) is not int or not low <= value <= high or (pow2 and value & (value - 1)):
            kind = "a power of two" if pow2 else "an integer"
            raise GeneratorLoadError(f"{source}: {name} is {value!r}; expected {kind} in [{low}, {high}]")
    sr_kwargs = init_kwargs.get("sr_kwargs")  # None is allowed: the generator's defaults
    channels = sr_kwargs.get("block_channels") if isinstance(sr_kwargs, dict) else None
    if channels is not None and (
        not isinstance(channels, list) or not all(type(c) is int and 1 <= c <= 4096 for c in channels)
    ):
        raise GeneratorLoadError(f"{source}: init_kwargs.sr_kwargs.block_channels is {channels!r}; expected ints")


def _finite(value) -> bool:
    """A finite real number (JSON's true / false are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_rendering(init_kwargs: dict, source) -> None:
    """One line naming the file and the field when a rendering setting would crash the renderer or render nothing:
    box_warp (the field's box side) and avg_camera_radius finite and > 0, avg_camera_pivot 3 finite numbers, and
    ray_start < ray_end, both finite and > 0, or both "auto" (EG3D's convention: the ray / box intersection, as in its
    ShapeNet config). Settings left out are the generator's to refuse (required) or default."""
    rk = init_kwargs.get("rendering_kwargs")
    if not isinstance(rk, dict):
        raise GeneratorLoadError(f"{source}: init_kwargs.rendering_kwargs is {rk!r}; expected an object")

    def refuse(key: str, expected: str):
        raise GeneratorLoadError(f"{source}: init_kwargs.rendering_kwargs.{key} is {rk[key]!r}; expected {expected}")

    for key in ("box_warp", "avg_camera_radius"):
        if key in rk and not (_finite(rk[key]) and rk[key] > 0):
            refuse(key, "a finite number > 0")
    pivot = rk.get("avg_camera_pivot", (0, 0, 0))
    if not isinstance(pivot, (list, tuple)) or len(pivot) != 3 or not all(map(_finite, pivot)):
        refuse("avg_camera_pivot", "3 finite numbers [x, y, z]")
    if "ray_start" not in rk or "ray_end" not in rk or rk["ray_start"] == rk["ray_end"] == "auto":
        return
    for key in ("ray_start", "ray_end"):
        if not (_finite(rk[key]) and rk[key] > 0):
            refuse(key, 'a finite number > 0, or "auto" with ray_start and ray_end both "auto"')
    if rk["ray_start"] >= rk["ray_end"]:
        refuse("ray_start", f"a depth below ray_end ({rk['ray_end']!r})")


def build_generator(init_kwargs: dict, state_dict: dict, neural_rendering_resolution=None, source="<memory>"):
    """TriPlaneGenerator(**init_kwargs) with `state_dict` loaded strictly, after checking names, shapes and
    finiteness. `neural_rendering_resolution` (EG3D keeps it as an attribute) overrides the kwargs' value."""
    from .generator import TriPlaneGenerator

    kwargs = dict(init_kwargs)
    check_sizes(kwargs, source)
    check_rendering(kwargs, source)
    if neural_rendering_resolution is not None:
        nrr = neural_rendering_resolution
        if type(nrr) is not int or not 1 <= nrr <= 4096:
            raise GeneratorLoadError(f"{source}: bad neural_rendering_resolution {nrr!r}")
        kwargs["neural_rendering_resolution"] = nrr
    check_finite(state_dict, source)
    try:
        G = TriPlaneGenerator(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise GeneratorLoadError(f"{source}: cannot build a TriPlaneGenerator from its settings: {exc}") from None
    _check_state(G.state_dict(), state_dict, source)
    G.load_state_dict(state_dict, strict=True)
    return G.eval().requires_grad_(False)


def _write_model(folder: Path, tensors: dict, meta: dict) -> Path:
    """model.safetensors then model.json, each atomically; a stale model.json goes first, so an interrupted write
    leaves an incomplete folder (refused on load), never new weights under old settings."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GeneratorLoadError(f"cannot write a model folder at {folder}: a file is in the way")
    seen, unshared = set(), {}
    for key, t in tensors.items():  # safetensors refuses tensors that share memory: give repeats their own copy
        ptr = t.untyped_storage().data_ptr()
        unshared[key] = t.clone() if ptr in seen else t
        seen.add(ptr)
    (folder / f"{MODEL_NAME}.json").unlink(missing_ok=True)
    return save_checkpoint(folder, unshared, meta, name=MODEL_NAME)


def save_generator(G, folder: str | os.PathLike, source=None, init_kwargs: dict | None = None) -> Path:
    """Write G's state dict and settings as a tristudio model folder (official key names)."""
    init_kwargs = init_kwargs if init_kwargs is not None else getattr(G, "init_kwargs", None)
    if not isinstance(init_kwargs, dict):
        raise GeneratorLoadError("save_generator: the generator has no init_kwargs; pass init_kwargs=")
    tensors = {k: v.detach().cpu().clone() for k, v in G.state_dict().items()}  # clone: no shared storages
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "init_kwargs": init_kwargs,
        "neural_rendering_resolution": int(G.neural_rendering_resolution),
        "source": source,
    }
    return _write_model(Path(folder), tensors, meta)


def convert_pickle(pkl: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Official EG3D pickle -> tristudio model folder (G_ema only). The generator is built and loaded first, so
    only weights that load are written. Returns a summary (parameters, resolutions, rendering kwargs, paths)."""
    pkl, out_dir = Path(pkl), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise GeneratorLoadError(f"cannot write a model folder at {out_dir}: a file is in the way")
    snap = read_network_pickle(pkl)
    G = _generator_from_snapshot(snap, pkl)
    source = {"kind": "eg3d-network-pickle", "file": pkl.name, "sha256": file_sha256(pkl), "network": "G_ema"}
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "init_kwargs": G.init_kwargs,
        "neural_rendering_resolution": int(G.neural_rendering_resolution),
        "source": source,
    }
    _write_model(out_dir, snap.G_ema.state_dict, meta)
    rk = G.rendering_kwargs
    return {
        "source": str(pkl),
        "out_dir": str(out_dir),
        "parameters": snap.G_ema.num_parameters(),  # trainable values; buffers (filters, noise) not counted
        "tensors": len(snap.G_ema.state_dict),
        "img_resolution": G.img_resolution,
        "neural_rendering_resolution": int(G.neural_rendering_resolution),
        "rendering_kwargs": {
            k: rk.get(k)
            for k in (
                "depth_resolution",
                "depth_resolution_importance",
                "ray_start",
                "ray_end",
                "box_warp",
                "avg_camera_radius",
                "avg_camera_pivot",
                "superresolution_module",
            )
        },
    }
