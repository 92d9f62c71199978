"""`check`: find what would break training on an EG3D dataset, one clear line per problem, plus a summary.

Problems found: unreadable dataset / dataset.json, duplicate entries, missing files, images without a label, labels
that are not 25 numbers, NaN/Inf, a cam2world whose rotation is not orthonormal (or is a reflection) or whose bottom
row is not [0, 0, 0, 1], bad intrinsics, unreadable images, mixed image sizes, a non-square resolution.
Summary: image count, resolution, and yaw / pitch / radius / fov ranges of the cameras (as seen from the origin).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import UnidentifiedImageError

from ..cameras import focal_to_fov
from .dataset import IMAGE_EXTENSIONS, LABELS_FILE, DatasetError, DatasetStore, decode_image, read_labels

__all__ = ["CheckReport", "check_dataset", "ORTHONORMAL_TOL"]

ORTHONORMAL_TOL = 1e-3  # max |R^T R - I| accepted


@dataclass
class CheckReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"problem: {p}" for p in self.problems]
        s = self.summary
        if s.get("count") is not None:
            lines.append(f"{self.path}: {s['count']} labelled images, resolution {s.get('resolution', '?')}")
            for key in ("yaw_deg", "pitch_deg", "radius", "fov_deg"):
                if key in s:
                    lo, hi = s[key]
                    lines.append(f"  {key:<9} [{lo:.3f}, {hi:.3f}]")
        lines.append("OK" if self.ok else f"{len(self.problems)} problem(s)")
        return "\n".join(lines)


def _label_problems(name: str, label) -> tuple[list[str], torch.Tensor | None]:
    if not isinstance(label, (list, tuple)):
        return [f"{name}: label is not a list of numbers"], None
    if len(label) != 25:
        return [f"{name}: label has {len(label)} floats, expected 25"], None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in label):
        return [f"{name}: label has non-numeric values"], None
    x = torch.tensor(label, dtype=torch.float64)
    if not torch.isfinite(x).all():
        return [f"{name}: label contains NaN or Inf"], None
    problems = []
    c2w, k = x[:16].reshape(4, 4), x[16:].reshape(3, 3)
    r = c2w[:3, :3]
    err = (r.T @ r - torch.eye(3, dtype=torch.float64)).abs().max().item()
    if err > ORTHONORMAL_TOL:
        problems.append(f"{name}: cam2world rotation is not orthonormal (max |R^T R - I| = {err:.3g})")
    elif torch.linalg.det(r).item() < 0:
        problems.append(f"{name}: cam2world rotation is a reflection (det = {torch.linalg.det(r).item():.3f})")
    if (c2w[3] - torch.tensor([0.0, 0, 0, 1], dtype=torch.float64)).abs().max() > 1e-6:
        problems.append(f"{name}: cam2world bottom row is {c2w[3].tolist()}, expected [0, 0, 0, 1]")
    if k[0, 0] <= 0 or k[1, 1] <= 0 or (k[2] - torch.tensor([0.0, 0, 1], dtype=torch.float64)).abs().max() > 1e-6:
        problems.append(f"{name}: intrinsics are not [[fx>0, s, cx], [0, fy>0, cy], [0, 0, 1]]: {k.tolist()}")
    return problems, (x if not problems else None)


def check_dataset(path: str | os.PathLike) -> CheckReport:
    """Check an EG3D dataset folder or zip; never raises for a bad dataset (the problems are in the report)."""
    report = CheckReport(Path(path))
    try:
        store = DatasetStore(path)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    with store:
        try:
            entries = read_labels(store)
        except DatasetError as exc:
            report.problems.append(str(exc))
            return report
        files = set(store.names())
        images_on_disk = {n for n in files if n.lower().endswith(IMAGE_EXTENSIONS)}
        seen: Counter[str] = Counter(n for n, _ in entries)
        for name, count in seen.items():
            if count > 1:
                report.problems.append(f"{name}: listed {count} times in {LABELS_FILE}")
        good_labels, sizes = [], {}
        for name, label in entries:
            if "\\" in name:
                report.problems.append(f"{name}: path uses '\\' (EG3D datasets use '/')")
            probs, x = _label_problems(name, label)
            report.problems.extend(probs)
            if name not in files:
                report.problems.append(f"{name}: missing file (listed in {LABELS_FILE})")
                continue
            try:
                img = decode_image(store.read(name))
            except UnidentifiedImageError:
                report.problems.append(f"{name}: unreadable image (not a recognised image format)")
                continue
            except Exception as exc:  # noqa: BLE001 - any decoder failure is the same problem
                report.problems.append(f"{name}: unreadable image ({type(exc).__name__}: {exc})")
                continue
            sizes[name] = (img.shape[1], img.shape[0], img.shape[2])
            if x is not None:
                good_labels.append(x)
        for name in sorted(images_on_disk - set(seen)):
            report.problems.append(f"{name}: image has no label in {LABELS_FILE}")
    by_size = Counter(sizes.values())
    if len(by_size) > 1:
        parts = []
        for (w, h, c), count in by_size.most_common():
            example = next(n for n, s in sizes.items() if s == (w, h, c))
            parts.append(f"{w}x{h}x{c} ({count} image{'s' if count > 1 else ''}, e.g. {example})")
        report.problems.append("mixed image sizes: " + ", ".join(parts))
    elif by_size:
        (w, h, c), _ = by_size.most_common(1)[0]
        report.summary["resolution"] = f"{w}x{h}" + ("" if c == 3 else f"x{c}")
        if w != h:
            report.problems.append(f"resolution {w}x{h} is not square (EG3D trains on square images)")
    report.summary["count"] = len(entries)
    if good_labels:
        labels = torch.stack(good_labels)
        offset = labels[:, [3, 7, 11]]
        radius = offset.norm(dim=-1)
        yaw = torch.rad2deg(torch.atan2(offset[:, 0], offset[:, 2]))
        pitch = torch.rad2deg(torch.asin((offset[:, 1] / radius.clamp(min=1e-12)).clamp(-1, 1)))
        fov = focal_to_fov(labels[:, 16])
        for key, v in (("yaw_deg", yaw), ("pitch_deg", pitch), ("radius", radius), ("fov_deg", fov)):
            report.summary[key] = (float(v.min()), float(v.max()))
    return report
