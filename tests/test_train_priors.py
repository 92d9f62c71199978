"""Small-world CLIP and prior training: losses go down, exported folders load through the public loaders with identical
outputs, CFG dropout happens at the configured rate, and a resumed run continues bit-exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tristudio.core.priors import load_clip, load_prior
from tristudio.core.priors.renders import load_render_set, render_objects
from tristudio.core.priors.tokenizer import byte_level_tokenizer
from tristudio.core.priors.train_clip import ClipConfig, ClipTrainer, contrastive_loss
from tristudio.core.priors.train_prior import PriorConfig, PriorTrainer, text_encoder_from_clip
from tristudio.core.priors.trainloop import load_train_state, save_train_state

TINY_CLIP = dict(
    image_size=32,
    patch_size=8,
    vision_width=32,
    vision_layers=1,
    text_width=32,
    text_layers=1,
    heads=2,
    projection_dim=16,
    batch_size=16,
    warmup=1,
    steps=40,
    lr=3e-3,
    p_view=0.0,
    p_material=0.0,
)
TINY_PRIOR = dict(
    resolution=16, block_out_channels=(16, 32), attention_heads=2, batch_size=8, warmup=1, steps=100, lr=2e-3
)


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("renders")
    render_objects(range(24), resolution=32).save(folder)
    return load_render_set(folder)  # also checks the save / load round trip


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_tokenizer()


def _clip_trainer(renders, tokenizer, **over):
    torch.manual_seed(0)
    return ClipTrainer(ClipConfig(**{**TINY_CLIP, **over}), tokenizer, renders)


def _fixed_clip_batch(trainer):
    r = trainer.renders
    captions = [r.caption(i, material=False, view=False) for i in range(len(r))]
    tokens = trainer.tokenizer(captions, padding=True, return_tensors="pt")
    names = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    groups = torch.tensor([names[c] for c in captions])
    from tristudio.core.priors.train_clip import _normalise

    return _normalise(r.float_images()), tokens, groups


def test_clip_steps_decrease_contrastive_loss_and_export_roundtrips(renders, tokenizer, tmp_path):
    trainer = _clip_trainer(renders, tokenizer)
    pixels, tokens, groups = _fixed_clip_batch(trainer)

    def loss():
        with torch.no_grad():
            return contrastive_loss(trainer.model, pixels, tokens.input_ids, tokens.attention_mask, groups).item()

    before = loss()
    for _ in range(25):
        trainer.train_step()
    after = loss()
    assert after < 0.8 * before, (before, after)

    trainer.model.eval()
    folder = trainer.export(tmp_path / "clip")
    clip = load_clip(folder, device="cpu")
    images = renders.float_images()[:6]
    texts = ["a red cube", "a blue sphere, side view", ""]
    with torch.no_grad():
        img_ref = trainer.model.get_image_features(pixel_values=_fixed_clip_batch(trainer)[0][:6])
        img_ref = torch.nn.functional.normalize(getattr(img_ref, "pooler_output", img_ref), dim=-1)
        tok = tokenizer(texts, padding=True, return_tensors="pt")
        txt_ref = trainer.model.get_text_features(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
        txt_ref = torch.nn.functional.normalize(getattr(txt_ref, "pooler_output", txt_ref), dim=-1)
    torch.testing.assert_close(clip.embed_images(images), img_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(clip.embed_text(texts), txt_ref, rtol=0, atol=1e-6)


def _prior_trainer(renders, tokenizer, **over):
    clip_trainer = _clip_trainer(renders, tokenizer)
    text = text_encoder_from_clip(clip_trainer.model)
    cfg = PriorConfig(**{**TINY_PRIOR, "holdout_pairs": [], **over})
    return PriorTrainer(cfg, text, tokenizer, renders)


def test_text_encoder_is_the_clip_text_tower(renders, tokenizer):
    clip_trainer = _clip_trainer(renders, tokenizer)
    text = text_encoder_from_clip(clip_trainer.model)
    ids = tokenizer(["a red cube"], return_tensors="pt").input_ids
    with torch.no_grad():
        ref = clip_trainer.model.text_model(input_ids=ids).last_hidden_state
        torch.testing.assert_close(text(ids)[0], ref, rtol=0, atol=0)
    assert not any(p.requires_grad for p in text.parameters())


def test_prior_step_decreases_denoising_loss_and_export_loads(renders, tokenizer, tmp_path):
    trainer = _prior_trainer(renders, tokenizer)
    fixed = trainer.draw()
    x0, captions, t, noise = fixed

    def loss():
        with torch.no_grad():
            return trainer.loss(x0, trainer.embed(captions), t, noise).item()

    before = loss()
    for _ in range(15):
        trainer.train_step(fixed)
    after = loss()
    assert after < 0.7 * before, (before, after)

    folder = trainer.export(tmp_path / "prior", use_ema=False)
    prior = load_prior(folder, device="cpu", dtype=torch.float32)
    assert prior.layout == "pixel-clip" and prior.resolution == 16 and prior.prediction_type == "epsilon"
    assert prior.sampling_guidance == trainer.cfg.sample_guidance == 1.25  # the export names its own CFG scale
    emb = prior.encode_prompt(["a red cube, side view", "a blue torus"])
    torch.testing.assert_close(emb.cond, trainer.embed(["a red cube, side view", "a blue torus"]), rtol=0, atol=0)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    steps = torch.tensor([10, 700])
    trainer.unet.eval()
    with torch.no_grad():
        ref = trainer.unet(x, steps, encoder_hidden_states=emb.cond).sample
    torch.testing.assert_close(prior.predict_noise(x, steps, emb.cond), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_cfg_dropout_rate_is_the_configured_one(renders, tokenizer, rate):
    trainer = _prior_trainer(renders, tokenizer, cfg_dropout=rate)
    captions = [c for _ in range(50) for c in trainer.captions(list(range(len(renders))) * 4)]  # 4800 captions
    empty = sum(c == "" for c in captions) / len(captions)
    assert abs(empty - rate) < 0.025, (empty, rate)
    assert all(c == "" or c.startswith(("a ", "an ")) for c in captions)


def test_holdout_pairs_are_never_trained_on(renders, tokenizer):
    pair = [renders.shape[0], renders.color[0]]
    trainer = _prior_trainer(renders, tokenizer, holdout_pairs=[pair])
    kept = set(zip(trainer.renders.shape, trainer.renders.color, strict=True))
    assert tuple(pair) not in kept and len(trainer.renders) < len(renders)


def _state_tensors(modules):
    return {f"{n}.{k}": v.clone() for n, m in modules.items() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("kind", ["prior", "clip"])
def test_resume_continues_from_the_exact_step_with_identical_weights(renders, tokenizer, tmp_path, kind):
    make = _prior_trainer if kind == "prior" else _clip_trainer
    straight = make(renders, tokenizer)
    for _ in range(4):
        straight.train_step()

    first = make(renders, tokenizer)
    for _ in range(2):
        first.train_step()
    save_train_state(tmp_path, first.state)
    resumed = make(renders, tokenizer)
    meta = load_train_state(tmp_path, resumed.state)
    assert meta["step"] == 2 and resumed.state.step == 2
    for _ in range(2):
        resumed.train_step()
    assert resumed.state.step == 4
    a, b = _state_tensors(straight.state.modules), _state_tensors(resumed.state.modules)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # a run resumed without its optimiser/RNG state would diverge: check the test can tell
    fresh = make(renders, tokenizer)
    for _ in range(2):
        fresh.train_step()
    assert any(not torch.equal(a[k], v) for k, v in _state_tensors(fresh.state.modules).items())


def test_sample_images_shape_range_and_seed(tiny_prior_dir):
    from tristudio.core.priors.ddim import sample_images

    prior = load_prior(tiny_prior_dir, device="cpu")
    a = sample_images(prior, ["a red cube", "a blue torus"], steps=3, guidance=3.0, seed=0)
    b = sample_images(prior, ["a red cube", "a blue torus"], steps=3, guidance=3.0, seed=0)
    c = sample_images(prior, ["a red cube", "a blue torus"], steps=3, guidance=3.0, seed=1)
    assert a.shape == (2, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # image i's noise depends only on (seed, i): the prompt list split into batches of one gives the same images
    split = sample_images(prior, ["a red cube", "a blue torus"], steps=3, guidance=3.0, seed=0, batch_size=1)
    torch.testing.assert_close(split, a, atol=1e-5, rtol=0)


def test_clip_bpe_tokenizer_ids_match_openai_clip():
    from tristudio.core.priors.tokenizer import clip_bpe_tokenizer

    # OpenAI CLIP's merges file ships with the tests (tests/data/clip_bpe/README.md: provenance, sha256, MIT licence)
    tok = clip_bpe_tokenizer(Path(__file__).parent / "data" / "clip_bpe" / "bpe_simple_vocab_16e6.txt.gz")
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("content", [b'{"renders": []}', b"\x1f\x8b\x08\x00cut"], ids=["json", "cut-gzip"])
def test_a_file_that_is_not_the_bpe_vocabulary_is_named(tmp_path, content):
    from tristudio.core.priors.tokenizer import BPE_FILE, read_bpe_merges

    bad = tmp_path / "vocab.gz"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"{bad} is not CLIP's BPE vocabulary \\({BPE_FILE}"):
        read_bpe_merges(bad)


def test_head_renders_are_captioned_with_hair_skin_and_view(tmp_path):
    import random

    from tristudio.core.priors.renders import concat_render_sets, render_heads
    from tristudio.core.worlds.captions import HAIR_COLORS, SKIN_TONES
    from tristudio.core.worlds.heads import sample_heads

    heads = render_heads(range(6), resolution=16)
    heads.save(tmp_path / "heads")
    heads = load_render_set(tmp_path / "heads")
    truth = sample_heads(list(range(6)))
    assert heads.color == truth.hair and heads.material == truth.skin and all(heads.is_head)
    assert all(h in HAIR_COLORS for h in heads.color) and all(s in SKIN_TONES for s in heads.material)
    caps = heads.random_captions(range(6), random.Random(0), p_material=0.0, p_view=1.0)
    for i, c in enumerate(caps):
        assert c == f"a head with {heads.color[i]} hair and {heads.material[i]} skin, {heads.view[i]}"
    mixed = concat_render_sets([render_objects(range(3), resolution=16), heads])
    assert mixed.where(True) == [3, 4, 5, 6, 7, 8] and mixed.where(False) == [0, 1, 2]
    assert mixed.meta["world"] == "heads+objects"


class _OracleClip:
    """A stand-in CLIP whose image embedding is the (normalised) sum of one-hot codes of the captions the image truly
    has, optionally lying about the view word of head back views."""

    def __init__(self, renders, back_says: str | None = None):
        self.vocab: dict[str, int] = {}
        self.rows = []
        for i in range(len(renders)):
            view = renders.view[i]
            if back_says and renders.is_head[i] and view == "back view":
                view = back_says
            bare = renders.caption(i, material=False, view=False)
            self.rows.append([bare, f"{bare}, {view}", renders.caption(i, material=True, view=False)])
        self.renders = renders

    def _code(self, text: str) -> int:
        return self.vocab.setdefault(text, len(self.vocab))

    def embed_text(self, texts):
        out = torch.zeros(len(texts), 4096)
        for j, t in enumerate(texts):
            out[j, self._code(t)] = 1
        return out

    def embed_images(self, images):
        keys = [bytes(x.numpy().tobytes()) for x in (self.renders.float_images() * 255).round().to(torch.uint8)]
        index = {k: i for i, k in enumerate(keys)}
        out = torch.zeros(len(images), 4096)
        for j, x in enumerate((images * 255).round().to(torch.uint8)):
            for t in self.rows[index[bytes(x.numpy().tobytes())]]:
                out[j, self._code(t)] += 1
        return torch.nn.functional.normalize(out, dim=1)


def test_retrieval_report_scores_objects_and_heads_separately():
    from tristudio.core.priors.renders import concat_render_sets, render_heads
    from tristudio.core.priors.train_clip import retrieval_report

    mixed = concat_render_sets([render_objects(range(8), resolution=16), render_heads(range(40), resolution=16)])
    assert "back view" in [v for v, h in zip(mixed.view, mixed.is_head, strict=True) if h]
    honest = retrieval_report(_OracleClip(mixed), mixed)
    assert honest["n_objects"] == 8 and honest["n_heads"] == 40
    for key in (
        "shape_color_top1",
        "view_top1",
        "material_top1",
        "head_top1",
        "hair_top1",
        "skin_top1",
        "head_view_top1",
    ):
        assert honest[key] == 1.0, key
    assert honest["head_back_as_front"] == 0.0
    janus = retrieval_report(_OracleClip(mixed, back_says="front view"), mixed)
    assert janus["head_back_as_front"] == 1.0 and janus["head_view_top1"] < 1.0
    assert janus["shape_color_top1"] == 1.0  # objects untouched


@pytest.mark.parametrize("kind, default", [("prior", 20000), ("clip", 1500)])
def test_cli_resume_keeps_the_runs_own_total_steps(tmp_path, kind, default):
    """`tristudio train prior WORK --resume` without --steps must finish the run's own schedule (a resumed 3000-step
    run once silently became a 20000-step one, restarting its cosine learning rate near the peak)."""
    import json

    from tristudio.cli.commands.train_priors import _resume_point

    (tmp_path / "checkpoints" / "step-00002500").mkdir(parents=True)
    (tmp_path / "checkpoints" / "latest").write_text("step-00002500\n")
    (tmp_path / "config.json").write_text(json.dumps({"kind": kind, kind: {"steps": 3000}}))
    assert _resume_point(tmp_path, kind, True, None, default) == (2500, 3000)
    assert _resume_point(tmp_path, kind, True, 5000, default) == (2500, 5000)  # an explicit new total wins
    assert _resume_point(tmp_path, kind, False, None, default) == (0, default)
    assert _resume_point(tmp_path, kind, False, 7, default) == (0, 7)


def test_sampling_guidance_defaults_to_stable_diffusions_without_a_recommendation(tmp_path):
    """A folder that names no CFG scale (a real diffusers folder) samples at 7.5; training.json's "sampling" wins."""
    import json

    from tristudio.core.priors.testing import build_tiny_sd

    folder = build_tiny_sd(tmp_path / "sd")
    assert load_prior(folder, device="cpu").sampling_guidance == 7.5
    (folder / "training.json").write_text(json.dumps({"sampling": {"guidance_scale": 3.0}}))
    assert load_prior(folder, device="cpu").sampling_guidance == 3.0
    prior = load_prior(folder, device="cpu")  # the property reads the file when asked
    for bad in ('{"sampling": {"guidance_scale": NaN}}', '{"sampling": {"guidance_scale": -1}}', "{not json", "[1]"):
        (folder / "training.json").write_text(bad)
        with pytest.raises(ValueError, match="training.json"):
            _ = prior.sampling_guidance


def test_holdout_pairs_of_reads_training_json_and_names_it_when_malformed(tmp_path):
    """prior-acceptance splits its scores by the export's held-out pairs: read as (shape, colour) tuples, none
    without a training.json, and a malformed one is a ValueError naming the file (not a bare JSON / type error)."""
    import json

    from tristudio.core.priors.acceptance import holdout_pairs_of

    assert holdout_pairs_of(tmp_path) == set()
    (tmp_path / "training.json").write_text(json.dumps({"holdout_pairs": [["cube", "yellow"], ["torus", "cyan"]]}))
    assert holdout_pairs_of(tmp_path) == {("cube", "yellow"), ("torus", "cyan")}
    for bad in ("{not json", "[1]", '{"holdout_pairs": 5}', '{"holdout_pairs": [1]}'):
        (tmp_path / "training.json").write_text(bad)
        with pytest.raises(ValueError, match="training.json.*holdout_pairs"):
            holdout_pairs_of(tmp_path)


def test_renders_make_command_writes_the_render_set_of_render_objects(tmp_path):
    """`tristudio renders make` writes exactly what core's render_objects / render_heads return for those seeds."""
    from typer.testing import CliRunner

    from tristudio.cli.app import app
    from tristudio.core.priors.renders import render_heads

    for world, fn in (("objects", render_objects), ("heads", render_heads)):
        out = tmp_path / world
        args = [
            "renders",
            "make",
            "--out",
            str(out),
            "--start",
            "3",
            "--count",
            "2",
            "--resolution",
            "16",
            "--world",
            world,
        ]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        got, want = load_render_set(out), fn([3, 4], 16)
        assert torch.equal(got.images, want.images)
        assert got.seeds == [3, 4] and got.shape == want.shape and got.color == want.color


@pytest.fixture(scope="module")
def render_folders(tmp_path_factory):
    """Render sets of 16 and 8 px (what `tristudio renders make --resolution 16 / 8` writes)."""
    root = tmp_path_factory.mktemp("render_folders")
    for side in (16, 8):
        render_objects(range(4), resolution=side).save(root / f"R{side}")
    return root / "R16", root / "R8"


def _train_cli(*args):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    res = CliRunner().invoke(app, ["train", *map(str, args), "--steps", "2", "--batch", "2", "--threads", "1"])
    return res.exit_code, " ".join(res.output.replace("│", " ").split())


@pytest.mark.parametrize("kind", ["clip", "prior"])
def test_render_sets_of_different_sizes_are_named_with_their_sizes(render_folders, tmp_path, kind):
    from tristudio.core.priors.testing import build_tiny_clip

    r16, r8 = render_folders
    clip = ["--clip", build_tiny_clip(tmp_path / "clip")] if kind == "prior" else []
    code, out = _train_cli(kind, "--out", tmp_path / "run", "--data", r16, "--data", r8, *clip)
    assert code == 1 and "Traceback" not in out, out
    assert f"({r16} is 16x16 px, {r8} is 8x8 px)" in out and "one --resolution" in out


def test_an_inconsistent_or_corrupt_renders_json_is_named_as_a_render_set(render_folders, tmp_path):
    import json
    import shutil

    from tristudio.core.io.checkpoint import CheckpointError
    from tristudio.core.priors.renders import load_render_sets

    with pytest.raises(FileNotFoundError, match=f"no render set \\(renders.json\\) in {tmp_path} "):
        load_render_sets([render_folders[0], tmp_path])  # (a folder after a good one is checked too)
    bad = tmp_path / "bad"
    shutil.copytree(render_folders[0], bad)
    meta = json.loads((bad / "renders.json").read_text())
    for key, value in (("color", meta["color"][:3]), ("seeds", None), ("yaw", ["left"] * 4)):
        (bad / "renders.json").write_text(json.dumps({**meta, key: value}))
        with pytest.raises(CheckpointError, match=f"renders.json: '{key}' must list one .* per image \\(4 in"):
            load_render_set(bad)
    (bad / "renders.json").write_text(json.dumps({**meta, "color": meta["color"][:3]}))
    code, out = _train_cli("clip", "--out", tmp_path / "run", "--data", bad)
    assert code == 1 and f"{bad / 'renders.json'}: 'color' must list one str per image (4 in" in out, out
    (bad / "renders.json").write_text("{not json")
    code, out = _train_cli("clip", "--out", tmp_path / "run2", "--data", bad)
    assert code == 1 and f"corrupt render set metadata {bad / 'renders.json'}" in out and "checkpoint" not in out


def test_prior_channels_are_checked_against_the_unets_norm_groups(render_folders, tmp_path):
    """--channels that GroupNorm cannot split into NORM_GROUPS groups were diffusers' 'num_channels (3) must be
    divisible by num_groups (16)': refused naming --channels; counts that pass build a UNet."""
    from tristudio.core.priors.train_prior import NORM_GROUPS, build_unet

    for bad in ("3,5", "16,24", "0,16"):
        code, out = _train_cli("prior", "--out", tmp_path / "run", "--data", render_folders[0], "--clip", tmp_path,
                               "--channels", bad)  # fmt: skip
        assert code == 2 and "Invalid value for --channels" in out and f"multiples of {NORM_GROUPS}" in out, out
    assert not (tmp_path / "run").exists()
    unet = build_unet(PriorConfig(resolution=8, block_out_channels=(16, 48), attention_heads=2), 32)
    assert tuple(unet.config.block_out_channels) == (16, 48)


def test_renders_make_keeps_an_existing_render_set_and_user_files_unless_overwrite(tmp_path):
    from typer.testing import CliRunner

    from tristudio.cli.app import app

    def make(out, *extra):
        res = CliRunner().invoke(
            app, ["renders", "make", "--out", str(out), "--count", "2", "--resolution", "8", *extra]
        )
        return res.exit_code, " ".join(res.output.replace("│", " ").split())

    out = tmp_path / "rs"
    assert make(out)[0] == 0
    before = (out / "renders.safetensors").read_bytes()
    code, said = make(out, "--start", "5")
    assert code == 2 and "already holds a render set: pass --overwrite" in said
    assert (out / "renders.safetensors").read_bytes() == before and load_render_set(out).seeds == [0, 1]
    assert make(out, "--start", "5", "--overwrite")[0] == 0 and load_render_set(out).seeds == [5, 6]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, said = make(mine)
    assert (
        code == 2
        and "holds other files (notes.txt)" in said
        and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    )


@pytest.mark.parametrize("kind, option, size", [("clip", "--image-size", 12), ("prior", "--resolution", 64)])
def test_an_input_size_that_does_not_divide_the_renders_is_refused(renders, tokenizer, kind, option, size):
    """Both trainers box-downsample the 32 px renders: 12 (uneven) or 64 (upsampled) is named, not trained on."""
    with pytest.raises(ValueError, match=f"renders are 32 px: {option} {size} does not divide it"):
        if kind == "clip":
            _clip_trainer(renders, tokenizer, image_size=size)
        else:
            _prior_trainer(renders, tokenizer, resolution=size)
