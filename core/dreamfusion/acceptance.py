"""Acceptance of DreamFusion in the small world: held-out shape x colour prompts and head prompts, per method.

    tristudio eval dreamfusion-acceptance --steps 300 --methods sds,csd,vsd --out runs/df_eval
    tristudio eval dreamfusion-acceptance --marks 300,1000,2000 --methods sds --out runs/df_stability

Measures, after a fixed step budget per prompt:
  * CLIP R-Precision (small-world CLIP) of orbit renders: each render retrieves among *all* 77 "a <colour> <shape>"
    captions of the objects world (chance 1/77), not only among the evaluated prompts;
  * the exported mesh's chamfer distance to every primitive of core/worlds (canonical sizes): is the named shape
    the nearest?  chamfer(A, B) = mean_a min_b |a - b| + mean_b min_a |a - b| over surface samples;
  * Janus: for head prompts, with and without view-dependent prompts, whether CLIP ranks "<prompt>, front view"
    above the other view words for the *back* view (yaw 180 deg) - a second face on the back of the head; and, to
    read that number, whether the *front* view is seen as a front view at all (a face formed).
Writes results.json (every run) and a summary; the run folders hold the orbit renders.

Stability (--marks): one run per object prompt to the last mark, measured at every mark (R-Precision over all the
prompts' orbit renders, chamfer to the named primitive per prompt, their mean); `stable_over_steps` accepts when no
later mark is worse than the first on either (R-Precision not lower, mean chamfer not higher by more than one cell of
the 64^3 mesh grid).
Each prompt's checkpoint and measurements are kept in the out folder, so a killed evaluation resumes.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..io.atomic import atomic_write_text
from ..io.images import make_grid, save_png, to_uint8
from ..priors.train_prior import DEFAULT_HOLDOUT
from ..worlds.captions import SHAPES, VIEW_WORDS, head_caption, object_caption, shape_color_prompts
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
    "evaluate_over_steps",
    "summarise_marks",
    "stable_over_steps",
]

# the prior's held-out (shape, colour) pairs: one colour per shape
HOLDOUT_PROMPTS = [object_caption(s, c) for s, c in DEFAULT_HOLDOUT]
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


def _candidates(object_prompts: list[str]) -> list[str]:
    """The captions an orbit render is retrieved among: all the objects world's "a <colour> <shape>" (77), then any
    evaluated prompt outside them."""
    candidates = [caption for _, _, caption in shape_color_prompts()]
    return candidates + [p for p in object_prompts if p not in candidates]


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
    from ..priors.rprecision import clip_r_precision

    object_prompts = list(HOLDOUT_PROMPTS if object_prompts is None else object_prompts)
    head_prompts = list(HEAD_PROMPTS if head_prompts is None else head_prompts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"steps": steps, "resolution": resolution, "runs": []}
    candidates = _candidates(object_prompts)
    for method in methods:
        renders, index = [], []
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
        atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    return results


def _measure(df, clip, prompt: str, candidates: list[str]) -> tuple[dict, torch.Tensor]:
    """Orbit renders (8 lambertian views, 64 px), per-view CLIP top-1 hit, and chamfer to the named primitive:
    (record, the orbit images (8, 3, 64, 64) in [0, 1])."""
    orbit = render_orbit(df, 8, 64, shading="lambertian")
    sim = clip.similarity(orbit["image"], candidates)  # (8, P)
    rec = {"hits": [bool(h) for h in (sim.argmax(dim=1) == candidates.index(prompt)).tolist()]}
    try:
        d = nearest_primitive(export_mesh(df, resolution=64))
        rec.update(chamfer=d[named_shape(prompt)], nearest=min(d, key=d.get))
    except ValueError as exc:  # no iso-surface
        rec.update(chamfer=None, nearest=None, error=str(exc))
    rec["opacity"] = float(orbit["opacity"].mean())
    return rec, orbit["image"]


def evaluate_over_steps(
    prior,
    clip,
    out: Path,
    marks=(300, 1000, 2000),
    method: str = "sds",
    object_prompts=None,
    seed: int = 0,
    log=print,
    **config,
) -> dict:
    """One run per object prompt to max(marks) with the default config (plus `config` overrides), measured at each
    mark. Resumable: out/<method>/<prompt>/checkpoint and marks.json hold each prompt's state and measurements, and
    settings.json what they were made with (method, seed, overrides, the prior's fingerprint): a folder made with
    other settings, or whose checkpoint is past a mark not yet measured, is refused (ValueError naming it)."""
    from ..io.checkpoint import folder_fingerprint

    object_prompts = list(HOLDOUT_PROMPTS if object_prompts is None else object_prompts)
    marks = sorted(int(m) for m in marks)
    candidates = _candidates(object_prompts)
    out = Path(out)
    prior_id = folder_fingerprint(prior.path) if getattr(prior, "path", None) else None
    settings = json.loads(json.dumps({"method": method, "seed": seed, "config": config, "prior": prior_id}))
    runs = []
    for prompt in object_prompts:
        folder = out / method / prompt.replace(" ", "_")
        settings_path, done_path = folder / "settings.json", folder / "marks.json"
        if settings_path.is_file() and json.loads(settings_path.read_text()) != settings:
            raise ValueError(f"{folder} was measured with other settings ({settings_path}): use another --out")
        done = json.loads(done_path.read_text()) if done_path.is_file() else {}
        if all(str(m) in done for m in marks):
            runs.append({"prompt": prompt, "marks": done})
            continue
        ckpt = folder / "checkpoint"
        if DreamFusion.has_checkpoint(ckpt):
            df = DreamFusion.load(ckpt, prior)
            early = [m for m in marks if str(m) not in done and m < df.step_count]
            if early:
                raise ValueError(
                    f"{folder}: its run is at step {df.step_count}, past the marks {early} not measured yet: "
                    "use another --out"
                )
        else:
            cfg = DreamFusionConfig(prompt=prompt, guidance=method, steps=marks[-1], seed=seed, **config)
            df = DreamFusion(cfg, prior)
        atomic_write_text(settings_path, json.dumps(settings, indent=2))
        t0 = time.perf_counter()
        for m in marks:
            if str(m) in done:
                continue
            df.run(m)
            rec, images = _measure(df, clip, prompt, candidates)
            rec["seconds"] = time.perf_counter() - t0
            done[str(m)] = rec
            save_png(folder / f"orbit_{m:05d}.png", make_grid(to_uint8(images, (0, 1)), cols=8))
            df.save(ckpt)
            atomic_write_text(done_path, json.dumps(done, indent=2))
            log(json.dumps({"method": method, "prompt": prompt, "step": m, **rec}))
        runs.append({"prompt": prompt, "marks": done})
    results = {"method": method, "marks": marks, "runs": runs, "summary": summarise_marks(runs, marks)}
    results["stable"] = stable_over_steps(results["summary"])
    atomic_write_text(out / method / "stability.json", json.dumps(results, indent=2))
    return results


def summarise_marks(runs: list[dict], marks) -> dict:
    """Per mark: R-Precision (fraction of all the prompts' views CLIP retrieves right), mean chamfer to the named
    primitive (a mesh-less run counts as 0.5, the box's half side), and how many meshes are nearest their shape."""
    summary = {}
    for m in marks:
        pairs = [(r["prompt"], r["marks"][str(m)]) for r in runs if str(m) in r["marks"]]
        recs = [rec for _, rec in pairs]
        hits = [h for rec in recs for h in rec["hits"]]
        chamfers = [rec["chamfer"] if rec.get("chamfer") is not None else 0.5 for rec in recs]
        summary[str(m)] = {
            "r_precision": float(np.mean(hits)) if hits else None,
            "chamfer_mean": float(np.mean(chamfers)) if chamfers else None,
            "named_nearest": int(sum(rec.get("nearest") == named_shape(prompt) for prompt, rec in pairs)),
            "prompts": len(recs),
        }
    return summary


def stable_over_steps(summary: dict, rp_tol: float = 0.0, chamfer_tol: float = 1 / 64) -> bool:
    """True when no later mark is worse than the first: R-Precision >= first - rp_tol and mean chamfer <= first +
    chamfer_tol at every mark. The default chamfer tolerance is one cell of the 64^3 marching-cubes grid the meshes
    are extracted on (the box is 1 wide): a smaller change is below what the mesh resolves."""
    keys = sorted(summary, key=int)
    first = summary[keys[0]]
    return all(
        summary[k]["r_precision"] >= first["r_precision"] - rp_tol
        and summary[k]["chamfer_mean"] <= first["chamfer_mean"] + chamfer_tol
        for k in keys[1:]
    )
