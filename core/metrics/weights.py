"""Reading a user's own weights file (the FID Inception's .pth, ArcFace's iresnet .pth / .safetensors): plain tensors
only (torch's weights-only loader: a pickle's code never runs), and anything else is one line naming the file and
what it should have been.

    state = read_state_dict(path, "iresnet weights", ArcFaceError)   # a dict of tensors, or ArcFaceError(...)
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

__all__ = ["read_state_dict"]


def read_state_dict(path: Path, what: str, error: type[Exception], expected: str = "") -> dict:
    """The state dict in `path` (torch.save'd, or .safetensors). A file that is not one raises `error` naming `path`,
    `what` it was read as, what the reader met and, when given, the `expected` file."""
    hint = f"; expected {expected}" if expected else ""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():  # torch warns about the pickle protocol before refusing or loading
                warnings.simplefilter("ignore", UserWarning)
                state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's weights-only loader refused it (not a pickle of plain tensors)
        # its message is a page advising weights_only=False (never here); keep the one line that says what it met
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        met = next((ln for ln in lines if ln.startswith(("Unsupported", "Unpickler found"))), lines[0] if lines else "")
        raise error(
            f"{path}: not readable as {what} (torch's weights-only loader: {met}); tristudio never runs a pickle's "
            f"code: save the state_dict with torch.save, or as .safetensors{hint}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a text file, a corrupt or truncated file: the same problem
        first = (str(exc).strip().splitlines() or [""])[0]
        met = f"{type(exc).__name__}: {first}"
        raise error(f"{path}: not readable as {what}: not a torch.save or .safetensors file ({met}){hint}") from None
    if not isinstance(state, dict):
        raise error(f"{path}: not a state dict of {what} (it holds a {type(state).__name__}){hint}")
    return state
