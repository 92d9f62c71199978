"""Shared pieces of the offline loaders: the error type, folder checks, the checked `from_pretrained` of every
model and tokenizer, device and dtype choice.

Nothing here downloads: every path is checked to be an existing local folder before any `from_pretrained` runs,
and the Hugging Face libraries are switched to offline mode before they are imported.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path

import torch

from ..device import resolve_device  # noqa: F401  (re-exported: the loaders' device choice)

__all__ = [
    "PriorLoadError",
    "go_offline",
    "load_pretrained",
    "load_tokenizer",
    "require_file",
    "require_folder",
    "resolve_device",
    "resolve_dtype",
]


class PriorLoadError(ValueError):
    """A prior or CLIP folder cannot be loaded. The message is one line naming the path expected and the layout."""


def go_offline() -> None:
    """Switch huggingface_hub / transformers / diffusers to offline mode (call before importing them)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def require_folder(path: str | os.PathLike, layout: str) -> Path:
    """The local folder `path`, or a PriorLoadError saying that it is missing (a hub id is never downloaded)."""
    folder = Path(path).expanduser().absolute()
    if folder.is_dir():
        return folder.resolve()
    if folder.exists():
        raise PriorLoadError(f"{folder} is a file: expected a local {layout}")
    looks_like_hub_id = isinstance(path, str) and path.count("/") == 1 and not path.startswith((".", "/", "~"))
    hint = " (it looks like a hub id; tristudio never downloads: download the folder and pass its local path)"
    raise PriorLoadError(f"no folder at {folder}: expected a local {layout}" + (hint if looks_like_hub_id else ""))


def model_folder(path: str | os.PathLike, layout: str, kind: str) -> Path:
    """require_folder, where a `tristudio train clip | prior` run folder stands for its exported RUN/export
    (training_run.run_export, kind "clip" | "prior"); PriorLoadError for a run that has exported nothing yet."""
    from ..io.training_run import run_export

    try:
        return run_export(require_folder(path, layout), kind)
    except FileNotFoundError as exc:
        raise PriorLoadError(str(exc)) from None


def require_file(folder: Path, name: str, layout: str) -> Path:
    """folder/name, or a PriorLoadError naming it and the layout that needs it (works for subfolders too)."""
    target = folder / name
    if not target.exists():
        kind = "subfolder" if "." not in name else "file"
        raise PriorLoadError(f"missing {kind} {target} (needed by the {layout} layout)")
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet(cls):
    """Silence the warnings of cls's library (transformers or diffusers) while it loads: what they would warn about
    (weights left randomly initialised) is checked and refused by the loaders instead, in one line."""
    logging = importlib.import_module(cls.__module__.split(".")[0] + ".utils.logging")
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _unreadable_weights(folder: Path) -> str | None:
    """'FILE is corrupt or truncated (why)' for the first .safetensors file in folder whose header does not read."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt"):
                pass
        except (SafetensorError, OSError) as exc:
            return f"{path} is corrupt or truncated ({_first_line(exc)})"
    return None


def _some(keys) -> str:
    """A few weight names: all of up to 3, else one entry per top-level module ('vision_model.* (196)')."""
    keys = sorted(k[0] if isinstance(k, tuple) else k for k in keys)  # mismatched keys: (name, file shape, shape)
    if len(keys) <= 3:
        return ", ".join(keys)
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".")[0], []).append(key)
    return ", ".join(g[0] if len(g) == 1 else f"{top}.* ({len(g)})" for top, g in groups.items())


def load_pretrained(cls, folder: Path, what: str, **kwargs):
    """`cls.from_pretrained(folder, **kwargs)`, offline; any failure is one PriorLoadError line naming `folder` and
    `what` it should hold. A model (a torch module) must get every weight from its files: a weights file that does
    not read is named, and weights missing from the files (transformers leaves them random, diffusers on the meta
    device), unexpected in them or of another shape than config.json says are refused, a few of them named."""
    from safetensors import SafetensorError

    is_model = issubclass(cls, torch.nn.Module)
    if is_model:  # loading info instead of warnings; a size mismatch is reported there, then refused below
        kwargs.update(output_loading_info=True, ignore_mismatched_sizes=True)
    try:
        with _quiet(cls):
            loaded = cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        reason = (is_model and _unreadable_weights(folder)) or _first_line(exc)
        raise PriorLoadError(f"cannot load {folder} ({what}): {reason}") from exc
    if not is_model:
        return loaded
    model, info = loaded
    kinds = {"missing": "missing_keys", "unexpected": "unexpected_keys", "of another shape": "mismatched_keys"}
    wrong = [f"{len(info[key])} {kind}: {_some(info[key])}" for kind, key in kinds.items() if info.get(key)]
    wrong += [str(message).strip().splitlines()[0] for message in info.get("error_msgs") or [] if str(message).strip()]
    if wrong:
        raise PriorLoadError(
            f"{folder}: the weights in its files do not match its config.json ({'; '.join(wrong)}); "
            f"the files are damaged or another model's ({what})"
        )
    return model


_VOCAB_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "spiece.model")


def load_tokenizer(cls, folder: Path, what: str, encoder: str, vocab_size: int, hint: str = ""):
    """`cls.from_pretrained(folder)`, offline, refused (one PriorLoadError line naming `folder`) unless it fits the
    text encoder `encoder` (a phrase naming its folder), whose embedding table has `vocab_size` rows.

    The rule: vocab_size / 2 < len(tokenizer) <= vocab_size. Every token id needs a row; a CLIP tokenizer has exactly
    vocab_size tokens, a T5 one a few fewer (32100 tokens, 32128 rows: the table is padded). A tokenizer far smaller
    than the table is the wrong one: without its vocabulary files (tokenizer.json ...) a folder loads as a 2-token
    tokenizer that gives every prompt the same ids, and the prior would silently ignore prompts.
    """
    try:
        with _quiet(cls):
            tokenizer = cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        raise PriorLoadError(f"cannot load tokenizer {folder} ({what}): {_first_line(exc)}{hint}") from exc
    size = len(tokenizer)
    if not vocab_size / 2 < size <= vocab_size:
        found = [name for name in _VOCAB_FILES if (folder / name).is_file()]
        holds = f"it holds {', '.join(found)}" if found else f"it has no {', '.join(_VOCAB_FILES[:-1])} or spiece.model"
        raise PriorLoadError(
            f"tokenizer {folder} does not fit the {encoder} ({what}): {size} tokens for {vocab_size} embedding rows, "
            f"expected more than {vocab_size // 2} and at most {vocab_size}; {holds}"
        )
    return tokenizer


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """Compute dtype: the one asked for, else float16 on CUDA and float32 elsewhere (weights are cast on load)."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        named = {
            "fp32": torch.float32,
            "float32": torch.float32,
            "fp16": torch.float16,
            "float16": torch.float16,
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
        }
        if dtype not in named:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(named)}")
        return named[dtype]
    return dtype
