"""The guidance methods by name: label and default scale, stated once (torch-free, so `tristudio --help` reads it
without importing torch). guidance.py's classes take their `name`, `label` and `default_scale` from here and
guidance.GUIDANCES maps each name to its class; a prior's profile (profiles.py) may override a default scale."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MethodInfo", "METHODS", "methods_help"]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str
    default_scale: float
    source: str


METHODS = {
    m.name: m
    for m in (
        MethodInfo("sds", "SDS (score distillation)", 100.0, "DreamFusion"),
        MethodInfo("csd", "CSD (classifier score)", 10.0, "Yu et al.; 1 is the bare classifier score"),
        MethodInfo("vsd", "VSD (variational, LoRA)", 7.5, "ProlificDreamer"),
    )
}


def methods_help() -> str:
    """'sds: SDS (score distillation), scale 100 (small-world prior: 5); ...' from METHODS and the profiles."""
    from .profiles import PROFILES

    parts = []
    for name, m in METHODS.items():
        overrides = [f"{p.title}: {p.guidance_scales[name]:g}" for p in PROFILES.values() if name in p.guidance_scales]
        extra = f" ({'; '.join(overrides)})" if overrides else ""
        parts.append(f"{name}: {m.label}, scale {m.default_scale:g}{extra}")
    return "; ".join(parts)
