"""`tristudio eval rprecision`: the CLI's score equals a direct R-Precision computation; bad folders fail clearly."""

import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tristudio.cli.app import app
from tristudio.core.priors import load_clip
from tristudio.core.priors.rprecision import clip_r_precision
from tristudio.core.priors.testing import build_tiny_clip


@pytest.fixture(scope="module")
def render_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("rp")
    clip_dir = build_tiny_clip(root / "clip")
    renders = root / "renders"
    renders.mkdir()
    prompts = ["a red cube", "a blue sphere", "a green torus"]
    rng = np.random.default_rng(0)
    captions = {}
    for i in range(9):
        name = f"r{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(renders / name)
        captions[name] = {"caption": prompts[i % 3]}
    (renders / "captions.json").write_text(json.dumps(captions))
    (root / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return clip_dir, renders, root / "prompts.txt", prompts, captions


def test_cli_score_equals_direct_computation(render_set):
    clip_dir, renders, prompts_file, prompts, captions = render_set
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "rprecision",
            "--clip",
            str(clip_dir),
            "--renders",
            str(renders),
            "--prompts",
            str(prompts_file),
            "--k",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    score = float(re.search(r"R-Precision@2: ([0-9.]+)", res.output).group(1))
    clip = load_clip(clip_dir, device="cpu")
    names = sorted(captions)
    images = torch.stack(
        [
            torch.from_numpy(np.asarray(Image.open(renders / n).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
            for n in names
        ]
    )
    index = [prompts.index(captions[n]["caption"]) for n in names]
    assert score == pytest.approx(clip_r_precision(clip, images, index, prompts, k=2), abs=1e-3)


def test_unknown_prompt_and_missing_captions_are_one_clear_line(render_set, tmp_path):
    clip_dir, renders, prompts_file, _, _ = render_set
    short = tmp_path / "short.txt"
    short.write_text("a red cube\na blue sphere\n")
    res = CliRunner().invoke(
        app, ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(renders), "--prompts", str(short)]
    )
    assert res.exit_code == 1 and "a green torus" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        app, ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(tmp_path), "--prompts", str(prompts_file)]
    )
    assert res.exit_code == 1 and "captions.json" in res.output


def test_a_clip_text_encoder_alone_is_refused_not_scored(render_set, tiny_prior_dir, tmp_path):
    """A prior's text encoder + tokenizer in one folder, as --clip: it loaded as a CLIPModel with a randomly
    initialised vision tower and printed a score."""
    _, renders, prompts_file, _, _ = render_set
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    for sub in ("text_encoder", "tokenizer"):
        for f in (tiny_prior_dir / sub).iterdir():
            shutil.copy(f, text_only / f.name)
    res = CliRunner().invoke(
        app, ["eval", "rprecision", "--clip", str(text_only), "--renders", str(renders), "--prompts", str(prompts_file)]
    )
    assert res.exit_code == 1 and "Traceback" not in res.output and "R-Precision" not in res.output, res.output
    assert f"error: {text_only}: the weights in its files do not match" in res.output
    assert "missing" in res.output and "vision_model.* (" in res.output


@pytest.fixture(scope="module")
def df_runs(tmp_path_factory, tiny_prior_dir):
    """Two DreamFusion runs (2 steps each, the tiny prior) of two prompts."""
    root = tmp_path_factory.mktemp("rpruns")
    runs = []
    for prompt in ("a red cube", "a blue sphere"):
        run = root / prompt.replace(" ", "_")
        args = ["dreamfusion", prompt, "--prior", str(tiny_prior_dir), "--resolution", "16", "--steps", "2"]
        res = CliRunner().invoke(app, [*args, "--render-every", "0", "--out", str(run), "--device", "cpu"])
        assert res.exit_code == 0, res.output
        runs.append(run)
    return runs


def test_runs_are_rendered_with_their_prior_written_as_renders_and_scored(
    render_set, df_runs, tiny_prior_dir, tmp_path
):
    from tristudio.core.dreamfusion.export import render_orbit
    from tristudio.core.dreamfusion.optimize import DreamFusion
    from tristudio.core.dreamfusion.runs import recorded_prior
    from tristudio.core.priors import load_prior
    from tristudio.core.priors.rprecision import read_render_set

    clip_dir = render_set[0]
    out = tmp_path / "views"
    runs = [a for r in df_runs for a in ("--runs", str(r))]
    args = ["eval", "rprecision", "--clip", str(clip_dir), *runs, "--views", "4", "--resolution", "16"]
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    score = float(re.search(r"R-Precision@1: ([0-9.]+)", res.output).group(1))
    assert "(8 renders, 2 prompts" in res.output
    # each run's views: its latest checkpoint, with the prior its command.json names, from render_orbit
    assert recorded_prior(df_runs[0]) == str(tiny_prior_dir)
    prior = load_prior(tiny_prior_dir, device="cpu")
    expected = torch.cat([render_orbit(DreamFusion.load(r, prior, read_only=True), 4, 16)["image"] for r in df_runs])
    images, index, prompts, names = read_render_set(out, out / "prompts.txt")
    assert prompts == ["a red cube", "a blue sphere"] and index == [0, 0, 0, 0, 1, 1, 1, 1]
    assert names[0] == "00-a_red_cube/view00.png" and names[7] == "01-a_blue_sphere/view03.png"
    assert (images - expected).abs().max() <= 0.5 / 255 + 1e-6  # the PNGs are the views (8-bit)
    clip = load_clip(clip_dir, device="cpu")
    assert score == pytest.approx(clip_r_precision(clip, expected, index, prompts), abs=5e-4)


def test_runs_bad_input_is_one_clear_line_and_user_files_stay(render_set, df_runs, tmp_path):
    clip = ["eval", "rprecision", "--clip", str(render_set[0]), "--device", "cpu", "--resolution", "8", "--views", "1"]

    def run(*args):
        res = CliRunner().invoke(app, [*clip, *map(str, args)])
        return res.exit_code, " ".join(res.output.replace("│", " ").split())

    code, out = run("--runs", df_runs[0])
    assert code == 1 and "one prompt ('a red cube'): R-Precision retrieves among 2 or more" in out
    code, out = run("--runs", df_runs[0], "--runs", tmp_path)
    assert code == 1 and f"{tmp_path} is not a DreamFusion run folder" in out and "Traceback" not in out
    code, out = run("--runs", df_runs[0], "--renders", render_set[1], "--prompts", render_set[2])
    assert code == 2 and "--renders DIR (with --prompts) or --runs RUN" in out
    only = tmp_path / "only.txt"
    only.write_text("a red cube\na green torus\n")
    code, out = run("--runs", df_runs[0], "--runs", df_runs[1], "--prompts", only)
    assert code == 1 and "['a blue sphere'] are not in" in out
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "captions.json").write_text("my own")
    code, out = run("--runs", df_runs[0], "--runs", df_runs[1], "--out", mine)
    assert code == 2 and "holds other files" in out and (mine / "captions.json").read_text() == "my own"


def test_repeated_prompts_count_once(render_set, tmp_path):
    """A prompt listed twice would tie with itself, and ties count against the image: it is kept once, first order."""
    from tristudio.core.priors.rprecision import read_prompt_set

    clip_dir, renders, prompts_file, prompts, _ = render_set
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("a red cube\na blue sphere\na red cube\n\na green torus\na blue sphere\n")
    assert read_prompt_set(repeated) == prompts
    scores = []
    for file in (prompts_file, repeated):
        args = ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(renders), "--prompts", str(file)]
        res = CliRunner().invoke(app, [*args, "--k", "2", "--device", "cpu"])
        assert res.exit_code == 0 and "(9 renders, 3 prompts" in res.output, res.output
        scores.append(res.output.split("(")[0])
    assert scores[0] == scores[1]
    twice = tmp_path / "twice.txt"
    twice.write_text("a red cube\na red cube\n")
    with pytest.raises(ValueError, match="at least 2 distinct prompts"):
        read_prompt_set(twice)


@pytest.mark.parametrize(
    "captions, key, problem",
    [
        (["a red cube", "a blue sphere"], "caption", "captions.json is a JSON list; expected an object mapping"),
        ({"r0.png": 5}, "caption", "the entry of 'r0.png' is 5; expected its prompt (a string) or an object"),
        ({"r0.png": {"caption": "a red cube"}}, "nokey", "the entry of 'r0.png' has no text 'nokey' entry (--key"),
        ({"r0.png": {"caption": None}}, "caption", "the entry of 'r0.png' has no text 'caption' entry"),
        ('{"r0.png": ', "caption", "captions.json is not valid JSON"),
    ],
)
def test_bad_captions_json_is_one_line_naming_it_and_the_entry(render_set, tmp_path, captions, key, problem):
    clip_dir, renders, prompts_file, _, _ = render_set
    folder = tmp_path / "renders"
    folder.mkdir()
    (folder / "r0.png").write_bytes((renders / "r0.png").read_bytes())
    (folder / "captions.json").write_text(captions if isinstance(captions, str) else json.dumps(captions))
    args = ["eval", "rprecision", "--clip", str(clip_dir), "--renders", str(folder), "--prompts", str(prompts_file)]
    res = CliRunner().invoke(app, [*args, "--key", key, "--device", "cpu"])
    out = " ".join(res.output.split())
    assert res.exit_code == 1 and problem in out and "Traceback" not in out, out
    assert out.startswith(f"error: {folder / 'captions.json'}")


def test_runs_out_reuse_duplicates_and_the_runs_prior(render_set, df_runs, tiny_prior_dir, tmp_path):
    """An earlier --out is replaced whole (no stale views); a user's render folder (captions.json + prompts.txt of
    their own) is refused and kept; a run named twice, too many views, and a run whose prior moved or changed are one
    line each, naming the run."""
    import shutil

    from tristudio.core.dreamfusion.runs import run_prior

    base = ["eval", "rprecision", "--clip", str(render_set[0]), "--device", "cpu", "--resolution", "8"]

    def run(*args):
        res = CliRunner().invoke(app, [*base, *map(str, args)])
        return res.exit_code, " ".join(res.output.replace("│", " ").split())

    a, b = df_runs
    out = tmp_path / "views"
    assert run("--runs", a, "--runs", b, "--views", "2", "--out", out)[0] == 0
    assert run("--runs", b, "--runs", a, "--views", "1", "--out", out)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "00-a_blue_sphere",
        "01-a_red_cube",
        "captions.json",
        "prompts.txt",
    ]
    assert sorted(p.name for p in (out / "00-a_blue_sphere").iterdir()) == ["view00.png"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "captions.json").write_text('{"photo1.png": "my caption"}')
    (mine / "prompts.txt").write_text("my caption\nother\n")
    code, said = run("--runs", a, "--runs", b, "--views", "1", "--out", mine)
    assert code == 2 and "holds other files" in said
    assert (mine / "captions.json").read_text() == '{"photo1.png": "my caption"}'
    code, said = run("--runs", a, "--runs", b, "--runs", a)
    assert code == 2 and "is named twice" in said
    assert run("--runs", a, "--runs", b, "--views", "100000")[0] == 2
    # the run's prior: where command.json says, with the weights it had then
    assert run_prior(a) == tiny_prior_dir
    moved = tmp_path / "moved_prior"
    shutil.copytree(tiny_prior_dir, moved)
    copy = tmp_path / "run_copy"
    shutil.copytree(a, copy)
    command = json.loads((copy / "command.json").read_text())
    command["options"]["prior_path"] = str(tmp_path / "gone")
    (copy / "command.json").write_text(json.dumps(command))
    code, said = run("--runs", copy, "--runs", b, "--views", "1")
    assert code == 1 and f"{copy} was made with the prior {tmp_path / 'gone'}, which is not there" in said
    command["options"]["prior_path"] = str(moved)
    (copy / "command.json").write_text(json.dumps(command))
    assert run("--runs", copy, "--runs", b, "--views", "1")[0] == 0  # the same weights elsewhere: fine
    weights = next((moved / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    code, said = run("--runs", copy, "--runs", b, "--views", "1")
    assert code == 1 and "was made with other weights than" in said and "Traceback" not in said
