"""A hostile user, scripted: bad inputs and kills against `python3 -m tristudio.cli`, counted for the README.

    PYTHONPATH=. python3 scripts/hostile.py [--json out.json]

Every case runs the CLI as a subprocess (tiny sizes, one thread) and is classified:
  clear error     exit code != 0, no traceback, an 'error: ...' / 'problem: ...' line or typer's 'Invalid value for ...'
  handled         a case that must succeed did, with the expected output (brackets printed verbatim, a stale lock taken
                  over, a long prompt warned about)
  traceback       'Traceback' in the output
  silent wrong    exit code 0 where an error was due, or a success case whose output is wrong
  data loss       a user's file gone or changed after the case
Then each trainer is SIGKILLed inside its checkpoint save (TRISTUDIO_FAULT_KILL_IN_SAVE: before the step folder's
rename, and between it and the `latest` pointer), resumed with --resume, and its final checkpoint compared tensor by
tensor (torch.equal) with an uninterrupted run's. Prints the table (markdown) and exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def cli(*args, env=None, timeout=600) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tristudio.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
        timeout=timeout,
    )
    return proc.returncode, proc.stdout + proc.stderr


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


class Tally:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, name: str, outcome: str, detail: str = "") -> None:
        self.rows.append({"case": name, "outcome": outcome, "detail": detail})
        mark = "ok " if outcome in ("clear error", "handled") else "BAD"
        print(f"  {mark} {outcome:13s} {name}" + (f"   [{detail[:150]}]" if mark == "BAD" else ""), flush=True)

    def count(self, outcome: str) -> int:
        return sum(r["outcome"] == outcome for r in self.rows)


def expect_error(t: Tally, name: str, args: list, needle: str = "", keep: list[Path] = (), **kw) -> None:
    before = {p: p.read_bytes() for p in keep}
    code, out = cli(*args, **kw)
    lost = [p for p in keep if not p.is_file() or p.read_bytes() != before[p]]
    text = flat(out)
    if lost:
        t.add(name, "data loss", f"{[str(p) for p in lost]}")
    elif "Traceback" in out:
        t.add(name, "traceback", out.strip().splitlines()[-1])
    elif code == 0:
        t.add(name, "silent wrong", "exit code 0")
    elif not any(w in text for w in ("error", "Error", "Invalid value", "problem:")) or needle not in text:
        t.add(name, "silent wrong", f"rc {code} but no clear line naming {needle!r}: {text[-200:]}")
    else:
        t.add(name, "clear error")


def expect_ok(t: Tally, name: str, args: list, check, **kw) -> None:
    code, out = cli(*args, **kw)
    if "Traceback" in out:
        t.add(name, "traceback", out.strip().splitlines()[-1])
    elif code != 0 or not check(flat(out)):
        t.add(name, "silent wrong", f"rc {code}: {flat(out)[-200:]}")
    else:
        t.add(name, "handled")


# --------------------------------------------------------------------------------------------------- fixtures


def fixtures(tmp: Path) -> dict:
    import torch
    from safetensors.torch import load_file, save_file

    from tristudio.core.priors.renders import render_objects
    from tristudio.core.priors.testing import build_tiny_pixel_prior

    torch.set_num_threads(1)
    fx = {"tmp": tmp}
    fx["prior"] = build_tiny_pixel_prior(tmp / "prior")
    fx["nan_prior"] = tmp / "nan_prior"
    shutil.copytree(fx["prior"], fx["nan_prior"])
    path = fx["nan_prior"] / "unet" / "diffusion_pytorch_model.safetensors"
    w = load_file(str(path))
    w[sorted(k for k, v in w.items() if v.numel() > 4)[0]].view(-1)[0] = float("nan")
    save_file(w, str(path))
    fx["renders"] = tmp / "renders"
    render_objects(range(12), resolution=16).save(fx["renders"])
    fx["file"] = tmp / "a_file.txt"
    fx["file"].write_text("user data")
    fx["thesis"] = tmp / "thesis"
    (fx["thesis"] / "sub").mkdir(parents=True)
    (fx["thesis"] / "thesis.txt").write_text("three years")
    (fx["thesis"] / "sub" / "data.csv").write_text("1,2,3")
    fx["fakezip"] = tmp / "fake.zip"
    fx["fakezip"].write_bytes(b"not a zip")
    huge = tmp / "huge_model"
    shutil.copytree(ROOT / "core" / "assets" / "eg3d_heads", huge)
    meta = json.loads((huge / "model.json").read_text())
    meta["init_kwargs"]["img_resolution"] = 2**20
    meta.pop("safetensors_sha256", None)
    (huge / "model.json").write_text(json.dumps(meta))
    fx["huge"] = huge
    fx["eg3d_data"] = tmp / "heads"
    code, out = cli("dataset", "make", "--world", "heads", "--count", "8", "--resolution", "32", "--out", tmp / "heads")
    assert code == 0, out
    return fx


# ------------------------------------------------------------------------------------------------- bad inputs


def bad_inputs(t: Tally, fx: dict) -> None:
    tmp, f, r, p = fx["tmp"], fx["file"], fx["renders"], fx["prior"]
    keep = [f, fx["thesis"] / "thesis.txt", fx["thesis"] / "sub" / "data.csv", fx["fakezip"]]
    o = tmp / "out"
    E = lambda name, args, needle="": expect_error(t, name, args, needle, keep)  # noqa: E731
    print("generate")
    E("generate --out FILE", ["generate", "--out", f / "x"], "is a file")
    E("generate --fov 0", ["generate", "--fov", "0", "--out", o], "--fov")
    E("generate --fov 400", ["generate", "--fov", "400", "--out", o], "--fov")
    E("generate --resolution -3", ["generate", "--resolution", "-3", "--out", o], "--resolution")
    E("generate --resolution 100000", ["generate", "--resolution", "100000", "--out", o], "--resolution")
    E("generate --trunc nan", ["generate", "--trunc", "nan", "--out", o], "--trunc")
    E("generate --yaw inf", ["generate", "--yaw", "inf", "--out", o], "--yaw")
    E("generate --pitch -inf", ["generate", "--pitch", "-inf", "--out", o], "--pitch")
    E("generate --seeds abc", ["generate", "--seeds", "abc", "--out", o], "abc")
    E("generate --model missing", ["generate", "--model", tmp / "nope", "--out", o], "nope")
    E("generate --model [/]x", ["generate", "--model", tmp / "[/]x[bold]", "--out", o], "[/]x[bold]")
    E("generate --model model.json img_resolution 2^20", ["generate", "--model", fx["huge"], "--out", o],
      "init_kwargs.img_resolution")  # fmt: skip
    E("generate --video --frames 0", ["generate", "--video", "--frames", "0", "--out", o], "--frames")
    E("generate --mesh-format stl", ["generate", "--mesh", "--mesh-format", "stl", "--out", o], "--mesh-format")
    E("generate --mesh-level 1e6", ["generate", "--seeds", "0", "--mesh", "--mesh-level", "1e6", "--out", o], "range")
    print("sample")
    s = ["sample", "a red cube", "--prior", p]
    E("sample -n 0", [*s, "-n", "0", "--out", o], "--num")
    E("sample --steps 0", [*s, "--steps", "0", "--out", o], "--steps")
    E("sample --out FILE", [*s, "--out", f], "is a file")
    E("sample --guidance nan", [*s, "--guidance", "nan", "--out", o], "--guidance")
    E("sample --eta 2", [*s, "--eta", "2", "--out", o], "--eta")
    E("sample --prior missing", ["sample", "a cube", "--prior", tmp / "nope", "--out", o], "nope")
    E("sample NaN prior", ["sample", "a cube", "--prior", fx["nan_prior"], "--out", o], "NaN")
    E("sample empty prompt", ["sample", "  ", "--prior", p, "--out", o], "empty prompt")
    print("train eg3d")
    e = ["train", "eg3d", "--data", fx["eg3d_data"], "--preset", "tiny"]
    E("train eg3d --batch 0", [*e, "--out", tmp / "e1", "--batch", "0"], "--batch")
    E("train eg3d --kimg -1", [*e, "--out", tmp / "e1", "--kimg", "-1"], "--kimg")
    E("train eg3d --kimg nan", [*e, "--out", tmp / "e1", "--kimg", "nan"], "--kimg")
    E("train eg3d --glr 0", [*e, "--out", tmp / "e1", "--glr", "0"], "--glr")
    E("train eg3d --data missing", ["train", "eg3d", "--data", tmp / "nope", "--out", tmp / "e1"], "nope")
    E("train eg3d --out FILE", [*e, "--out", f], "is a file")
    E("train eg3d --preset bogus", [*e[:3], "--preset", "bogus", "--out", tmp / "e1"], "bogus")
    print("train clip / prior / features")
    c = ["train", "clip", "--steps", "2", "--batch", "4", "--image-size", "16", "--eval-every", "0"]
    E("train clip without --data", [*c, "--out", tmp / "c1"], "--data")
    E("train clip --data missing", [*c, "--out", tmp / "c1", "--data", tmp / "nope"], "nope")
    E("train clip --data wrong folder", [*c, "--out", tmp / "c1", "--data", tmp], "renders.json")
    E("train clip --steps 0", [*c, "--out", tmp / "c1", "--data", r, "--steps", "0"], "--steps")
    E("train clip --batch 0", [*c, "--out", tmp / "c1", "--data", r, "--batch", "0"], "--batch")
    E("train clip --lr -1", [*c, "--out", tmp / "c1", "--data", r, "--lr", "-1"], "--lr")
    E("train clip --resume of nothing", [*c, "--out", tmp / "c1", "--resume"], "no run to resume")
    E("train clip --out a file", [*c, "--out", f, "--data", r], "is a file")
    pr = ["train", "prior", "--out", tmp / "p1", "--steps", "2", "--batch", "4", "--resolution", "16"]
    E("train prior without --clip", [*pr, "--data", r], "--clip")
    E("train prior without --data", [*pr, "--clip", tmp], "--data")
    E("train prior --clip missing", [*pr, "--data", r, "--clip", tmp / "nope"], "nope")
    E("train prior --channels abc", [*pr, "--data", r, "--clip", tmp, "--channels", "abc"], "--channels")
    E("train prior --channels 0", [*pr, "--data", r, "--clip", tmp, "--channels", "0"], "--channels")
    E("train prior --ema-decay 1.5", [*pr, "--data", r, "--clip", tmp, "--ema-decay", "1.5"], "--ema-decay")
    E("train features --data missing", ["train", "features", "--out", tmp / "feat", "--data", tmp / "nope"], "nope")
    E("train features --steps 0", ["train", "features", "--out", tmp / "feat", "--data", r, "--steps", "0"], "--steps")
    print("dataset make")
    d = ["dataset", "make", "--world", "objects", "--count", "2", "--resolution", "8"]
    E("dataset make --out a user's folder", [*d, "--out", fx["thesis"]], "thesis.txt")
    E("dataset make --out a user's file", [*d, "--out", f], "--overwrite")
    E("dataset make --out a non-dataset zip", [*d, "--out", fx["fakezip"]], "--overwrite")
    E("dataset make --count 0", [*d[:4], "--count", "0", "--out", tmp / "ds"], "--count")
    E("dataset check missing", ["dataset", "check", tmp / "nope"], "nope")
    print("fit")
    fit = ["fit", "object:0", "--repr", "grid", "--views", "2", "--steps", "2", "--resolution", "8"]
    E("fit --steps 0", [*fit, "--out", tmp / "f1", "--steps", "0"], "--steps")
    E("fit --out FILE", [*fit, "--out", f], "is a file")
    E("fit bad scene", ["fit", "nothing:0", "--out", tmp / "f1"], "nothing")
    E("fit --lr -1", [*fit, "--out", tmp / "f1", "--lr", "-1"], "--lr")
    print("dreamfusion")
    df = ["dreamfusion", "a red cube", "--prior", p, "--steps", "1", "--resolution", "16", "--render-every", "0"]
    E("dreamfusion --lr nan", [*df, "--out", tmp / "d1", "--lr", "nan"], "--lr")
    E("dreamfusion --guidance-scale -1", [*df, "--out", tmp / "d1", "--guidance-scale", "-1"], "--guidance-scale")
    E("dreamfusion --out FILE", [*df, "--out", f], "is a file")
    E("dreamfusion empty prompt", ["dreamfusion", " ", "--prior", p, "--out", tmp / "d1"], "empty prompt")
    E("dreamfusion NaN prior", ["dreamfusion", "a cube", "--prior", fx["nan_prior"], "--out", tmp / "d1"], "NaN")
    E("dreamfusion --guidance xyz", [*df, "--out", tmp / "d1", "--guidance", "xyz"], "--guidance")
    E("dreamfusion --ckpt-every 0", [*df, "--out", tmp / "d1", "--ckpt-every", "0"], "--ckpt-every")
    print("other commands")
    E("convert missing pickle", ["convert", tmp / "nope.pkl", "--out", tmp / "conv"], "nope.pkl")
    E("eval consistency --model missing", ["eval", "consistency", "--model", tmp / "nope"], "nope")


def runs_and_locks(t: Tally, fx: dict) -> None:
    tmp, r, p = fx["tmp"], fx["renders"], fx["prior"]
    print("runs, locks, markup, prompts")
    clip = ["train", "clip", "--steps", "2", "--batch", "4", "--image-size", "16", "--eval-every", "0", "--data", r]
    work = tmp / "run_clip"
    expect_ok(t, "train clip (a fresh tiny run)", [*clip, "--out", work], lambda s: "exported" in s)
    expect_error(t, "train clip on an existing run without --resume", [*clip, "--out", work], "--resume")
    work2 = tmp / "run_clip2"
    work2.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (work2 / ".lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        expect_error(t, "two runs on one folder (lock held)", [*clip, "--out", work2], f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    expect_ok(t, "stale lock (dead pid) taken over", [*clip, "--out", work2], lambda s: "stale lock" in s)
    e = ["train", "eg3d", "--data", fx["eg3d_data"], "--preset", "tiny", "--kimg", "0.004", "--batch", "4"]
    e += ["--ckpt-every", "1", "--sample-every", "0", "--threads", "1", "--device", "cpu"]
    expect_ok(t, "train eg3d (a fresh tiny run)", [*e, "--out", tmp / "run_e"], lambda s: "done" in s)
    expect_error(t, "train eg3d on an existing run without --resume", [*e, "--out", tmp / "run_e"], "--resume")
    expect_ok(
        t, "train eg3d --resume with only --out and a longer --kimg", ["train", "eg3d", "--out", tmp / "run_e",
                                                                       "--resume", "--kimg", "0.008"],
        lambda s: "done" in s,
    )  # fmt: skip
    again = ["train", "eg3d", "--out", tmp / "run_e", "--resume"]
    expect_error(t, "train eg3d --resume with another --glr", [*again, "--glr", "1"], "the run's")
    expect_error(t, "train clip --resume with another --lr", [*clip, "--out", work, "--resume", "--lr", "0.5"], "--lr")
    odd = tmp / "a[/]b[bold]c"
    expect_ok(
        t, "generate --out with [/] and [bold]", ["generate", "--seeds", "0", "--out", odd], lambda s: str(odd) in s
    )
    df = ["--prior", p, "--steps", "1", "--resolution", "16", "--render-every", "0", "--threads", "1"]
    expect_ok(
        t, "dreamfusion prompt with [bold] markup", ["dreamfusion", "a [bold]red[/] cube", *df, "--out", tmp / "d2"],
        lambda s: "a [bold]red[/] cube" in s,
    )  # fmt: skip
    long_prompt = ("a red cube on a table " * 500)[:10_000]
    expect_ok(
        t, "dreamfusion 10,000-character prompt", ["dreamfusion", long_prompt, *df, "--out", tmp / "d3"],
        lambda s: "warning" in s and "view words stay" in s,
    )  # fmt: skip
    expect_ok(
        t, "sample 10,000-character prompt", ["sample", long_prompt, "--prior", p, "-n", "1", "--steps", "1",
                                             "--out", tmp / "s3"],
        lambda s: "warning" in s and "tokens" in s,
    )  # fmt: skip
    ds = ["dataset", "make", "--world", "objects", "--count", "2", "--resolution", "8", "--out", tmp / "ds_own"]
    expect_ok(t, "dataset make", ds, lambda s: "wrote" in s)
    expect_ok(t, "dataset make over its own dataset", ds, lambda s: "wrote" in s)


# ------------------------------------------------------------------------ a second review's cases (wave 2, session 5)


def users_files_and_damaged_models(t: Tally, fx: dict) -> None:
    """What two stranger reviews found in session 5: runs and makers writing over a user's files or models, damaged
    model folders loading as if whole, numbers past what torch takes, malformed small files."""
    tmp, r, p = fx["tmp"], fx["renders"], fx["prior"]
    print("user files, damaged models, bounds")

    def users_folder(name: str, files: dict[str, str]) -> tuple[Path, list[Path]]:
        folder = tmp / name
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        return folder, [folder / rel for rel in files]

    mine, keep = users_folder("mine_clip", {"export/notes.txt": "a", "log.jsonl": "my log\n"})
    clip = ["train", "clip", "--data", r, "--steps", "2", "--batch", "4", "--image-size", "16", "--eval-every", "0"]
    expect_error(
        t, "train clip --out a user's folder (export/, log.jsonl)", [*clip, "--out", mine], "not a tristudio run", keep
    )
    mine, keep = users_folder("mine_df", {"log.jsonl": "my log\n", "mesh.glb": "mine"})
    df = ["dreamfusion", "a red cube", "--prior", p, "--steps", "1", "--resolution", "16", "--render-every", "0"]
    expect_error(
        t, "dreamfusion --out a user's folder (log.jsonl, mesh.glb)", [*df, "--out", mine], "not a tristudio run", keep
    )
    model = tmp / "model_copy"
    shutil.copytree(ROOT / "core" / "assets" / "eg3d_heads", model)
    keep = [model / "model.json", model / "model.safetensors"]
    expect_error(t, "dreamfusion --out an EG3D model folder", [*df, "--out", model], "not a tristudio run", keep)
    e = ["train", "eg3d", "--data", fx["eg3d_data"], "--preset", "tiny", "--kimg", "0.004", "--batch", "4"]
    expect_error(t, "train eg3d --out an EG3D model folder", [*e, "--out", model], "not a tristudio run", keep)
    expect_error(t, "eval id-sw-train --out an EG3D model folder",
                 ["eval", "id-sw-train", "--out", model, "--identities", "2", "--steps", "1"], "already holds a model",
                 keep)  # fmt: skip
    keep = [r / "renders.json", r / "renders.safetensors"]
    expect_error(t, "renders make --out an existing render set",
                 ["renders", "make", "--out", r, "--count", "1", "--resolution", "8"], "--overwrite", keep)  # fmt: skip
    mine, keep = users_folder(".mine_ds.partial", {"notes.txt": "mine"})
    expect_error(t, "dataset make beside a user's .NAME.partial folder",
                 ["dataset", "make", "--world", "objects", "--count", "2", "--resolution", "8", "--out",
                  tmp / "mine_ds"], "in the way", keep)  # fmt: skip
    no_vocab = tmp / "prior_no_vocab"
    shutil.copytree(ROOT / "core" / "assets" / "prior_small", no_vocab)
    (no_vocab / "tokenizer" / "tokenizer.json").unlink()
    expect_error(t, "sample with a prior missing tokenizer.json (prompts ignored before)",
                 ["sample", "a red cube", "--prior", no_vocab, "-n", "1", "--steps", "1", "--out", tmp / "s9"],
                 "tokenizer")  # fmt: skip
    caps = tmp / "caps_list"
    caps.mkdir()
    (caps / "captions.json").write_text('["a", "b"]')
    (tmp / "two.txt").write_text("a red cube\na blue sphere\n")
    expect_error(t, "eval rprecision with a captions.json that is a list",
                 ["eval", "rprecision", "--renders", caps, "--prompts", tmp / "two.txt"], "captions.json")  # fmt: skip
    bad_box = tmp / "model_box0"
    shutil.copytree(ROOT / "core" / "assets" / "eg3d_heads", bad_box)
    meta = json.loads((bad_box / "model.json").read_text())
    meta["init_kwargs"]["rendering_kwargs"]["box_warp"] = 0
    (bad_box / "model.json").write_text(json.dumps(meta))
    expect_error(
        t, "generate with model.json box_warp 0", ["generate", "--model", bad_box, "--out", tmp / "g9"], "box_warp"
    )
    one = tmp / "one_image"
    assert cli("dataset", "make", "--world", "heads", "--count", "1", "--resolution", "32", "--out", one)[0] == 0
    expect_error(t, "eval fid on a 1-image dataset",
                 ["eval", "fid", "--data", one, "--features", "sw", "--num", "2", "--model",
                  ROOT / "core" / "assets" / "eg3d_heads"], "2")  # fmt: skip
    expect_error(
        t,
        "generate --threads 100000 (segfault before)",
        ["generate", "--threads", "100000", "--out", tmp / "g9"],
        "--threads",
    )
    expect_error(t, "generate --seeds=-3", ["generate", "--seeds=-3", "--out", tmp / "g9"], "--seeds")
    heads = ROOT / "core" / "assets" / "eg3d_heads"
    expect_error(
        t, "eval floaters --threshold -1", ["eval", "floaters", "--threshold", "-1", "--model", heads], "--threshold"
    )
    expect_error(
        t, "dreamfusion --resolution 100000", [*df[:4], "--resolution", "100000", "--out", tmp / "d9"], "--resolution"
    )
    expect_error(
        t, "sample --seed 2^70", ["sample", "a cube", "--prior", p, "--seed", str(2**70), "--out", tmp / "s9"], "--seed"
    )


# ------------------------------------------------------------------------------------------- kills and resumes


def trainers(fx: dict) -> dict[str, list]:
    tmp, r, p = fx["tmp"], fx["renders"], fx["prior"]
    clip_export = tmp / "kill_train_clip_straight" / "export"  # the "train clip" straight run, made first
    return {
        "fit": lambda out: ["fit", "object:0", "--repr", "grid", "--views", "4", "--steps", "6", "--resolution", "12",
                            "--test-views", "1", "--rays", "32", "--samples", "6", "--field-resolution", "8",
                            "--channels", "4", "--ckpt-every", "2", "--threads", "1", "--out", out],
        "dreamfusion": lambda out: ["dreamfusion", "a red cube", "--prior", p, "--steps", "6", "--ckpt-every",
                                    "2", "--resolution", "16", "--render-every", "0", "--threads", "1", "--out", out],
        "train clip": lambda out: ["train", "clip", "--data", r, "--steps", "6", "--batch", "4", "--image-size",
                                   "16", "--eval-every", "0", "--ckpt-every", "2", "--threads", "1", "--out", out],
        "train prior": lambda out: ["train", "prior", "--clip", clip_export, "--data", r, "--steps", "6",
                                    "--batch", "4", "--resolution", "16", "--channels", "16,32", "--ckpt-every", "2",
                                    "--sample-every", "0", "--threads", "1", "--out", out],
        "train eg3d": lambda out: ["train", "eg3d", "--data", fx["eg3d_data"], "--preset", "tiny", "--kimg", "0.012",
                                   "--batch", "4", "--ckpt-every", "2", "--sample-every", "0", "--threads", "1",
                                   "--device", "cpu", "--out", out],
    }  # fmt: skip


def kill_and_resume(fx: dict) -> dict[str, str]:
    import torch

    from tristudio.core.io.run_checkpoints import FAULT_ENV, latest_step, load_latest

    results = {}
    for name, args in trainers(fx).items():
        slug = name.replace(" ", "_")
        straight = fx["tmp"] / f"kill_{slug}_straight"
        code, out = cli(*args(straight))
        if code != 0:
            results[name] = f"straight run failed: {flat(out)[-200:]}"
            continue
        want = load_latest(straight, warn=None)
        verdicts = []
        for where in ("rename", "commit"):
            killed = fx["tmp"] / f"kill_{slug}_{where}"
            code, out = cli(*args(killed), env={FAULT_ENV: f"2:{where}"})
            at = latest_step(killed)
            if code != -9:
                verdicts.append(f"{where}: not killed (rc {code})")
                continue
            code, out = cli(*args(killed), "--resume")
            got = load_latest(killed, warn=None) if code == 0 else None
            same = (
                got is not None
                and got.step == want.step
                and got.tensors.keys() == want.tensors.keys()
                and all(torch.equal(got.tensors[k], want.tensors[k]) for k in want.tensors)
            )
            ok = "bit-identical" if same else f"DIFFERENT (rc {code}: {flat(out)[-160:]})"
            verdicts.append(f"killed in the {where} window at step {at}, resumed to {want.step}: {ok}")
        results[name] = "; ".join(verdicts)
        print(f"  {name}: {results[name]}", flush=True)
    return results


def main(json_out: Path = typer.Option(None, "--json", help="write the rows and counts here")) -> None:
    """Every hostile input and kill, then the tables; exit 1 on a traceback, silent wrong result, loss or bad resume."""
    t0 = time.time()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="tristudio-hostile-") as d:
        fx = fixtures(Path(d))
        bad_inputs(tally, fx)
        runs_and_locks(tally, fx)
        users_files_and_damaged_models(tally, fx)
        print("kills inside the checkpoint save, then --resume")
        resumes = kill_and_resume(fx)
    counts = {k: tally.count(k) for k in ("clear error", "handled", "traceback", "silent wrong", "data loss")}
    identical = sum(v.count("bit-identical") for v in resumes.values())
    kills = sum(v.count("killed in") + v.count("not killed") for v in resumes.values())
    print()
    print("| tries | clear errors | handled (must succeed) | tracebacks | silent wrong results | data loss |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(tally.rows) + kills} | {counts['clear error']} | {counts['handled']} | {counts['traceback']} | "
        f"{counts['silent wrong']} | {counts['data loss']} |"
    )
    print()
    print("| trainer | SIGKILL inside the checkpoint save, then --resume |")
    print("|---|---|")
    for name, verdict in resumes.items():
        print(f"| {name} | {verdict} |")
    print(f"\n{len(tally.rows)} input cases + {kills} kills ({identical} bit-identical) in {time.time() - t0:.0f} s")
    if json_out:
        json_out.write_text(json.dumps({"rows": tally.rows, "counts": counts, "resumes": resumes}, indent=1))
    bad = counts["traceback"] + counts["silent wrong"] + counts["data loss"] + (kills - identical)
    raise typer.Exit(1 if bad else 0)


if __name__ == "__main__":
    typer.run(main)
