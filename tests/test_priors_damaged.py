"""Damaged prior and CLIP folders are refused on load, with one line naming what is wrong, instead of loading into a
model that silently ignores prompts or holds random weights: a tokenizer that does not fit its text encoder (its
vocabulary file gone, another model's), a weight missing from / unexpected in / of another shape in the files, a
truncated weights file. The undamaged folders still load, and their prompts still matter."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from tristudio.core.io.assets import shipped_prior_path
from tristudio.core.priors import PriorLoadError, load_clip, load_prior
from tristudio.core.priors.testing import build_tiny_clip, build_tiny_if, build_tiny_pixel_prior

PROMPTS = ["a red cube", "a blue sphere"]


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    root = tmp_path_factory.mktemp("undamaged")
    return {
        "pixel-clip": build_tiny_pixel_prior(root / "pixel"),
        "if": build_tiny_if(root / "if"),
        "clip": build_tiny_clip(root / "clip"),
    }


@pytest.fixture
def copy(originals, tmp_path):
    """copy(name, as_=name): a fresh copy of one undamaged folder, to damage."""
    return lambda name, as_=None: shutil.copytree(originals[name], tmp_path / (as_ or name))


def _refused(load, folder) -> str:
    with pytest.raises(PriorLoadError) as info:
        load(folder, device="cpu")
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, ValueError)
    return message


def _prompts_matter(prior) -> None:
    ids = [prior.tokenizer(p).input_ids for p in PROMPTS]
    assert ids[0] != ids[1]
    emb = prior.encode_prompt(PROMPTS).cond
    assert not torch.allclose(emb[0], emb[1])


def _edit_weights(file, edit) -> None:
    tensors = load_file(str(file))
    edit(tensors)
    save_file(tensors, str(file))


# ---- tokenizers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pixel-clip", "if"])
@pytest.mark.parametrize("damage", ["no tokenizer.json", "empty folder"])
def test_a_tokenizer_without_its_vocabulary_is_refused_naming_it(originals, copy, name, damage):
    """Without tokenizer.json the folder loaded as a 2-token CLIPTokenizer: every prompt became the same ids."""
    folder = copy(name)
    for f in (folder / "tokenizer").iterdir():
        if damage == "empty folder" or f.name == "tokenizer.json":
            f.unlink()
    message = _refused(load_prior, folder)
    assert f"tokenizer {folder / 'tokenizer'} does not fit the text encoder {folder / 'text_encoder'}" in message
    assert "it has no tokenizer.json" in message
    _prompts_matter(load_prior(originals[name], device="cpu"))


def test_another_models_tokenizer_is_refused(copy):
    """A CLIP BPE tokenizer (49408 tokens) next to a 514-row text encoder: ids past the embedding table."""
    folder = copy("pixel-clip")
    shutil.rmtree(folder / "tokenizer")
    shutil.copytree(shipped_prior_path() / "tokenizer", folder / "tokenizer")
    message = _refused(load_prior, folder)
    assert str(folder / "tokenizer") in message and "49408 tokens for 514 embedding rows" in message


def test_a_t5_tokenizer_with_a_padded_embedding_table_loads(copy):
    """T5 pads its embedding table (32100 tokens, 32128 rows): a table a little larger than the tokenizer is fine."""
    from transformers import T5EncoderModel

    folder = copy("if")
    config = json.loads((folder / "text_encoder" / "config.json").read_text())
    assert config["vocab_size"] == 99
    config["vocab_size"] = 128
    shutil.rmtree(folder / "text_encoder")
    T5EncoderModel(T5EncoderModel.config_class(**config)).save_pretrained(folder / "text_encoder")
    prior = load_prior(folder, device="cpu")
    assert len(prior.tokenizer) == 99 and prior.text_encoder.config.vocab_size == 128
    _prompts_matter(prior)


# ---- weights ----------------------------------------------------------------------------------------------------
WEIGHTS = {"unet": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors"}


@pytest.mark.parametrize("component", sorted(WEIGHTS))
def test_a_missing_or_unexpected_weight_is_refused_naming_it(originals, copy, component):
    """A missing text-encoder weight loaded as random values; a missing UNet weight stayed on the meta device."""
    folder = copy("pixel-clip")
    file = folder / component / WEIGHTS[component]
    dropped = sorted(load_file(str(file)))[-1]
    _edit_weights(file, lambda t: t.pop(dropped))
    message = _refused(load_prior, folder)
    assert message.startswith(f"{folder / component}: the weights in its files do not match its config.json")
    assert f"1 missing: {dropped}" in message

    folder = copy("pixel-clip", as_="extra")
    file = folder / component / WEIGHTS[component]
    _edit_weights(file, lambda t: t.update({"stray.weight": torch.zeros(3)}))
    assert "1 unexpected: stray.weight" in _refused(load_prior, folder)
    _prompts_matter(load_prior(originals["pixel-clip"], device="cpu"))


def test_a_weight_of_another_shape_is_refused_naming_it(copy):
    folder = copy("pixel-clip")
    config_file = folder / "text_encoder" / "config.json"
    config = json.loads(config_file.read_text())
    config["intermediate_size"] *= 2  # the files hold the smaller MLP
    config_file.write_text(json.dumps(config))
    message = _refused(load_prior, folder)
    assert str(folder / "text_encoder") in message and "of another shape: encoder.* (" in message


@pytest.mark.parametrize("component", sorted(WEIGHTS))
@pytest.mark.parametrize("keep", [4, 100, "half"])
def test_a_truncated_weights_file_is_named(copy, component, keep):
    folder = copy("pixel-clip")
    file = folder / component / WEIGHTS[component]
    os.truncate(file, file.stat().st_size // 2 if keep == "half" else keep)
    message = _refused(load_prior, folder)
    assert f"{file} is corrupt or truncated" in message


# ---- CLIP -------------------------------------------------------------------------------------------------------
def test_a_clip_text_encoder_alone_is_not_loaded_as_a_clip_model(originals, tmp_path):
    """The text encoder + tokenizer of a prior in one folder loaded as a CLIPModel with a random vision tower."""
    folder = tmp_path / "text_only"
    folder.mkdir()
    for sub in ("text_encoder", "tokenizer"):
        for f in (originals["pixel-clip"] / sub).iterdir():
            shutil.copy(f, folder / f.name)
    message = _refused(load_clip, folder)
    assert message.startswith(f"{folder}: the weights in its files do not match its config.json")
    assert "missing" in message and "vision_model.* (" in message and "visual_projection.weight" in message


def test_clip_tokenizer_and_weights_damage_is_refused(originals, copy):
    folder = copy("clip")
    (folder / "tokenizer.json").unlink()
    message = _refused(load_clip, folder)
    assert f"tokenizer {folder} does not fit the CLIP text tower in {folder}" in message
    assert "2 tokens for 514 embedding rows" in message

    folder = copy("clip", as_="truncated")
    os.truncate(folder / "model.safetensors", 100)
    assert f"{folder / 'model.safetensors'} is corrupt or truncated" in _refused(load_clip, folder)

    clip = load_clip(originals["clip"], device="cpu")
    text = clip.embed_text(PROMPTS)
    assert not torch.allclose(text[0], text[1])
