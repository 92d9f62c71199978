"""Regenerate (or re-check) the EG3D references under tests/data with NVlabs' own code.

1. tests/data/eg3d_parity_small: outputs of the official generator on stored weights and inputs (below).
2. tests/data/eg3d_ffhq512_state_dict.txt: the official FFHQ-512 G_ema state dict (names, order, shapes), listed from
   the official TriPlaneGenerator built with tristudio's `ffhq512` preset (checked; rewritten with --write).

The fixture holds a reduced TriPlaneGenerator's weights (`G.*`, float16), its inputs (`z`, `c`) and the outputs of
NVlabs' official implementation on them (`out.*`); tests/test_generator.py::test_parity_with_official_small_reference
checks ours against those outputs. This script runs the official code from a checkout you supply (nothing of it is
copied here; it is imported from --eg3d) on the stored weights and inputs and compares with, or rewrites, `out.*`.

"Deterministic mode": EG3D's renderer draws its stratified jitter with torch.rand_like and its importance-sampling
quantiles with torch.rand. The script runs the official renderer module with `torch` replaced, in that module only,
by a proxy whose rand_like returns 0.5 everywhere (samples at bin centres) and whose rand(R, K) returns the quantiles
(k + 0.5) / K on every row; everything else is the real torch. This is exactly tristudio's `deterministic=True`
(core/render/volume.py). Synthesis noise is 'const' and the super-resolution noise 'none' (the fixture's model.json).

    git clone https://github.com/NVlabs/eg3d && git -C eg3d checkout 7cf1fd1e
    python3 scripts/eg3d_parity_reference.py --eg3d eg3d/eg3d            # compare, print the largest differences
    python3 scripts/eg3d_parity_reference.py --eg3d eg3d/eg3d --write    # rewrite the out.* tensors

CPU only, float32, ~10 s. Exit status 1 when a recomputed output differs from the stored one beyond float noise.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch
import typer
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "eg3d_parity_small"
TOLERANCE = {"out.ws_psi1": 1e-5, "out.ws": 1e-5, "out.planes_stride16": 1e-4, "out.planes_window": 1e-4}
DEFAULT_TOLERANCE = 1e-3  # images and depth


def _deterministic_torch() -> types.SimpleNamespace:
    """A stand-in for `torch` inside the official renderer module: fixed jitter and fixed importance quantiles."""

    def rand_like(x, *args, **kwargs):
        return torch.full_like(x, 0.5)

    def rand(*size, device=None, dtype=None, **kwargs):
        rows, k = size if len(size) == 2 else size[0]
        q = (torch.arange(k, device=device, dtype=dtype or torch.float32) + 0.5) / k
        return q.expand(rows, k).clone()

    proxy = types.SimpleNamespace(rand_like=rand_like, rand=rand)
    return types.SimpleNamespace(
        **{**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")}, **vars(proxy)}
    )


def official_outputs(eg3d_dir: Path, fixture: Path) -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(eg3d_dir))
    from training.triplane import TriPlaneGenerator  # noqa: E402  (NVlabs' code, from --eg3d)
    from training.volumetric_rendering import renderer  # noqa: E402

    renderer.torch = _deterministic_torch()
    meta = json.loads((fixture / "model.json").read_text())
    t = load_file(str(fixture / "model.safetensors"))
    torch.manual_seed(0)
    G = TriPlaneGenerator(**meta["init_kwargs"]).eval().requires_grad_(False)
    G.load_state_dict({k[2:]: v.float() for k, v in t.items() if k.startswith("G.")}, strict=True)
    G.neural_rendering_resolution = meta["neural_rendering_resolution"]
    z, c = t["z"].float(), t["c"].float()
    out = {}
    with torch.no_grad():
        out["out.ws_psi1"] = G.mapping(z, c)
        ws = G.mapping(z, c, truncation_psi=meta["truncation_psi"], truncation_cutoff=meta["truncation_cutoff"])
        out["out.ws"] = ws
        planes = G.backbone.synthesis(ws, noise_mode=meta["noise_mode"])
        planes = planes.view(len(planes), 3, 32, planes.shape[-2], planes.shape[-1])
        out["out.planes_stride16"] = planes[..., ::16, ::16].contiguous()
        out["out.planes_window"] = planes[..., 120:136, 120:136].contiguous()
        img = G.synthesis(ws, c, neural_rendering_resolution=meta["neural_rendering_resolution"], noise_mode="const")
        for key in ("image", "image_raw", "image_depth"):
            out[f"out.{key}"] = img[key].contiguous()
    return out


def official_state_dict_lines(eg3d_dir: Path) -> list[str]:
    """`name (shape)` of every entry of the official FFHQ-512 generator's state dict, in order."""
    sys.path.insert(0, str(eg3d_dir))
    sys.path.insert(0, str(ROOT))  # tristudio's preset, for the constructor arguments
    from training.triplane import TriPlaneGenerator  # noqa: E402

    from tristudio.core.eg3d.presets import preset  # noqa: E402

    kw = preset("ffhq512")
    kw.pop("neural_rendering_resolution", None)  # tristudio's own argument (official: set after construction)
    G = TriPlaneGenerator(**kw)
    return [f"{k} {tuple(v.shape)}" for k, v in G.state_dict().items()]


def check_state_dict_list(eg3d_dir: Path, write: bool) -> bool:
    path = ROOT / "tests" / "data" / "eg3d_ffhq512_state_dict.txt"
    text = path.read_text().splitlines()
    header = [ln for ln in text if ln.startswith("#")]
    stored = [ln for ln in text if not ln.startswith("#")]
    official = official_state_dict_lines(eg3d_dir)
    same = stored == official
    print(f"{path.name}: {len(stored)} stored entries, {len(official)} official, identical: {same}")
    if write and not same:
        path.write_text("\n".join(header + official) + "\n")
        print(f"wrote {path}")
    return same or write


def check(eg3d: Path, fixture: Path, write: bool) -> int:
    """0 when the fixture matches the official code (or was rewritten), 1 when it does not, 2 on a wrong folder."""
    if not (eg3d / "training" / "triplane.py").is_file():
        print(f"{eg3d} is not NVlabs' eg3d folder (no training/triplane.py in it)", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    listed_ok = check_state_dict_list(eg3d, write)
    new = official_outputs(eg3d, fixture)
    stored = load_file(str(fixture / "model.safetensors"))
    worst = 0.0
    for key, value in new.items():
        old = stored.get(key)
        if old is None or old.shape != value.shape:
            print(f"{key}: stored {None if old is None else tuple(old.shape)}, recomputed {tuple(value.shape)}")
            worst = float("inf")
            continue
        diff = float((old.float() - value).abs().max())
        tol = TOLERANCE.get(key, DEFAULT_TOLERANCE)
        print(f"{key:24s} {tuple(value.shape)!s:22s} max |stored - official| = {diff:.3g} (tolerance {tol:g})")
        worst = max(worst, diff / tol)
    if write:
        stored.update({k: v.to(stored[k].dtype if k in stored else v.dtype) for k, v in new.items()})
        tmp = fixture / ".model.safetensors.tmp"
        save_file(stored, str(tmp))
        tmp.replace(fixture / "model.safetensors")
        print(f"wrote {fixture / 'model.safetensors'}")
        return 0
    return 0 if worst <= 1 and listed_ok else 1


def main(
    eg3d: Path = typer.Option(..., help="the 'eg3d' folder of an NVlabs/eg3d checkout"),
    fixture: Path = typer.Option(FIXTURE, help="the parity fixture folder"),
    write: bool = typer.Option(False, help="rewrite the fixture's out.* tensors"),
) -> None:
    raise typer.Exit(check(eg3d, fixture, write))


if __name__ == "__main__":
    typer.run(main)
