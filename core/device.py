"""The one place a --device string becomes a torch.device."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "DeviceError"]


class DeviceError(ValueError):
    """A device that was asked for but cannot be used; the message is one line for the user."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA if torch sees a CUDA device, else CPU; 'cpu', 'cuda', 'cuda:1', ... as asked.

    Raises DeviceError when CUDA (or a CUDA index) is asked for and torch sees none, or the string names no device
    or one other than cpu / cuda (mps, meta, ...)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {str(device)!r}; expected auto, cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):  # torch parses mps, meta, xpu, ...: tristudio runs on neither
        raise DeviceError(f"unsupported device {str(device)!r}; expected auto, cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA requested but not available (torch sees no CUDA device; use --device cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= (n := torch.cuda.device_count()):
        raise DeviceError(f"no device {str(device)!r}: torch sees {n} CUDA device(s), cuda:0 .. cuda:{n - 1}")
    return dev
