"""Acceptance of DreamFusion in the small world: held-out shape x colour prompts and head prompts, per method.

    python -m tristudio.core.dreamfusion.evaluate --steps 300 --methods sds csd vsd --out runs/df_eval

Measures, after a fixed step budget per prompt:
  * CLIP R-Precision (small-world CLIP) of orbit renders: each render retrieves among *all* 77 "a <colour> <shape>"
    captions of the objects world (chance 1/77), not only among the evaluated prompts;
  * the exported mesh's chamfer distance to every primitive of core/worlds (canonical sizes): is the named shape
    the nearest?  chamfer(A, B) = mean_a min_b |a - b| + mean_b min_a |a - b| over surface samples;
  * Janus: for head prompts, with and without view-dependent prompts, whether CLIP ranks "<prompt>, front view"
    above the other view words for the *back* view (yaw 180 deg) - a second face on the back of the head; and, to
    read that number, whether the *front* view is seen as a front view at all (a face formed).
Writes results.json (every run) and a summary; the run folders hold the orbit renders.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..worlds.captions import COLORS, SHAPES, VIEW_WORDS, head_caption, object_caption
from .export import export_mesh, render_orbit
from .optimize import DreamFusion, DreamFusionConfig

__all__ = [
    "circularity",
    "named_shape",
    "chamfer",
    "primitive_points",
    "nearest_primitive",
    "evaluate",
    "HOLDOUT_PROMPTS",
]

# the prior's held-out (shape, colour) pairs (core/priors/train_prior.py DEFAULT_HOLDOUT): one colour per shape
HOLDOUT_PAIRS = [(s, c) for s, c in zip(SHAPES, list(COLORS)[1:], strict=False)]
HOLDOUT_PROMPTS = [object_caption(s, c) for s, c in HOLDOUT_PAIRS]
HEAD_PROMPTS = [
    head_caption(h, s) for h, s in (("black", "light"), ("blond", "tan"), ("brown", "pale"), ("red", "dark"))
]


def circularity(mask: torch.Tensor) -> float:
    """4 pi area / perimeter^2 of a binary silhouette (1 for a disc; skimage's perimeter estimate)."""
    from skimage.measure import perimeter

    m = mask.detach().cpu().numpy().astype(bool)
    p = perimeter(m)
    return float(4 * math.pi * m.sum() / p**2) if p > 0 else 0.0


def named_shape(prompt: str) -> str:
    """The world shape a prompt names: the longest shape word it ends with ("a green rounded cube": "rounded cube")."""
    words = [s for s in SHAPES if prompt == s or prompt.endswith(" " + s)]
    if not words:
        raise ValueError(f"{prompt!r} names none of the world's shapes {SHAPES}")
    return max(words, key=len)


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-neighbour distance between point sets (P, 3) and (Q, 3)."""
    d = torch.cdist(
        torch.as_tensor(a, dtype=torch.float32),
        torch.as_tensor(b, dtype=torch.float32),
        compute_mode="donot_use_mm_for_euclid_dist",
    )  # exact (0 on identical sets)
    return float(d.min(dim=1).values.mean() + d.min(dim=0).values.mean())


@functools.lru_cache(maxsize=32)
def primitive_points(shape_word: str, n: int = 2000, resolution: int = 64, seed: int = 0) -> np.ndarray:
    """Surface samples of a world primitive at its canonical size (objects world, middle of its size ranges)."""
    from ..mesh import extract_mesh
    from ..worlds.objects import object_scene

    scene = object_scene(shape_word, "gray", "matte")

    def density(x):  # -sdf: the surface is the 0 level
        return -scene(x.reshape(-1, 3)).reshape(*x.shape[:-1], 1)

    mesh = extract_mesh(density, 0.0, None, bound=0.5, resolution=resolution)
    return _sample(mesh, n, seed)


def _sample(mesh, n: int, seed: int) -> np.ndarray:
    import trimesh

    return np.asarray(trimesh.sample.sample_surface(mesh, n, seed=seed)[0], dtype=np.float32)


def nearest_primitive(mesh, n: int = 2000) -> dict[str, float]:
    """Chamfer distance from a mesh to every primitive shape word."""
    pts = _sample(mesh, n, 1)
    return {s: chamfer(pts, primitive_points(s, n)) for s in SHAPES}


@torch.no_grad()
def _view_scores(df, clip, prompt: str, resolution: int = 64) -> dict[str, str]:
    """CLIP's top view word for the back view (and the front view) of the scene."""
    out = {}
    for name, yaw in (("front", 0.0), ("back", math.pi)):
        cam = Cameras.orbit(torch.tensor([yaw]), math.radians(10.0), 2.5, fov_deg=30.0)  # objects-world framing
        img = df.render(cam, resolution, "lambertian")["image"]
        texts = [f"{prompt}, {w}" for w in VIEW_WORDS]
        sim = clip.similarity(img, texts)[0]
        out[name] = VIEW_WORDS[int(sim.argmax())]
    return out


def evaluate(
    prior,
    clip,
    out: Path,
    methods=("sds", "csd", "vsd"),
    steps: int = 300,
    resolution: int | None = None,
    object_prompts=None,
    head_prompts=None,
    seed: int = 0,
    mesh: bool = True,
    log=print,
) -> dict:
    from ..io.images import make_grid, save_png, to_uint8
    from ..priors.rprecision import clip_r_precision

    object_prompts = list(HOLDOUT_PROMPTS if object_prompts is None else object_prompts)
    head_prompts = list(HEAD_PROMPTS if head_prompts is None else head_prompts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"steps": steps, "resolution": resolution, "runs": []}
    for method in methods:
        renders, index = [], []
        candidates = [object_caption(s, c) for s in SHAPES for c in COLORS]
        candidates += [p for p in object_prompts if p not in candidates]  # prompts outside the world's captions
        for i, prompt in enumerate(object_prompts):
            t0 = time.perf_counter()
            df = DreamFusion(
                DreamFusionConfig(prompt=prompt, guidance=method, steps=steps, resolution=resolution, seed=seed), prior
            )
            df.run(steps)
            orbit = render_orbit(df, 8, 64, shading="lambertian")  # shaded, as the CLIP's training renders
            renders.append(orbit["image"])
            index += [candidates.index(prompt)] * 8
            save_png(out / method / f"{i:02d}_orbit.png", make_grid(to_uint8(orbit["image"], (0, 1)), cols=8))
            rec = {"method": method, "prompt": prompt, "kind": "object", "seconds": time.perf_counter() - t0}
            if mesh:
                try:
                    d = nearest_primitive(export_mesh(df, resolution=64))
                    shape_word = named_shape(prompt)
                    rec.update(chamfer=d, nearest=min(d, key=d.get), named=shape_word)
                except ValueError as exc:  # no iso-surface
                    rec.update(chamfer=None, nearest=None, error=str(exc))
            results["runs"].append(rec)
            log(json.dumps(rec))
        rp = clip_r_precision(clip, torch.cat(renders), index, candidates)
        results[f"{method}_r_precision"] = rp
        for vd in (True, False):
            janus, front_ok = [], []
            for prompt in head_prompts:
                df = DreamFusion(
                    DreamFusionConfig(
                        prompt=prompt, guidance=method, steps=steps, resolution=resolution, seed=seed, view_dependent=vd
                    ),
                    prior,
                )
                df.run(steps)
                views = _view_scores(df, clip, prompt)
                janus.append(views["back"] == "front view")
                front_ok.append(views["front"] == "front view")
                rec = {"method": method, "prompt": prompt, "kind": "head", "view_dependent": vd, **views}
                results["runs"].append(rec)
                log(json.dumps(rec))
            tag = "vd" if vd else "plain"
            results[f"{method}_janus_{tag}"] = float(np.mean(janus)) if janus else None
            results[f"{method}_front_is_front_{tag}"] = float(np.mean(front_ok)) if front_ok else None
        objs = [r for r in results["runs"] if r["method"] == method and r["kind"] == "object" and r.get("named")]
        results[f"{method}_mesh_nearest_is_named"] = (
            float(np.mean([r["nearest"] == r["named"] for r in objs])) if objs else None
        )
        (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv=None) -> None:
    from ..priors import load_clip, load_prior

    root = Path(__file__).resolve().parent.parent / "assets"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default=str(root / "prior_small"))
    ap.add_argument("--clip", default=str(root / "clip_small"))
    ap.add_argument("--methods", nargs="+", default=["sds", "csd", "vsd"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--resolution", type=int, default=None, help="training render size (default: the prior's)")
    ap.add_argument("--objects", type=int, default=None, help="evaluate the first N held-out object prompts")
    ap.add_argument("--heads", type=int, default=None, help="evaluate the first N head prompts")
    ap.add_argument("--out", default="runs/dreamfusion_eval")
    a = ap.parse_args(argv)
    prior, clip = load_prior(a.prior, "cpu"), load_clip(a.clip, "cpu")
    res = evaluate(
        prior,
        clip,
        Path(a.out),
        a.methods,
        a.steps,
        a.resolution,
        HOLDOUT_PROMPTS[: a.objects],
        HEAD_PROMPTS[: a.heads],
    )
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
