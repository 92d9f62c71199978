"""Tiny random priors and CLIP models saved as real folders, for tests (SDS guidance, viewer, metrics).

Each builder writes a folder that `load_prior` / `load_clip` loads through the public path, in well under a second,
with no files from outside (byte-level CLIP vocabulary, character-level T5 vocabulary built in memory).

    build_tiny_sd(path, prediction_type="epsilon", weights_dtype=torch.float32, seed=0) -> Path  # latent, 64 px
    build_tiny_if(path, seed=0, weights_dtype=torch.float32) -> Path                  # pixel, 32 px, 3 -> 6 ch UNet
    build_tiny_pixel_prior(path, seed=0, prediction_type="epsilon", weights_dtype=...) -> Path  # pixel 32 px, CLIP
    build_tiny_clip(path, with_image_processor=True, seed=0) -> Path                  # CLIPModel, 32 px, D = 16
    tiny_clip_tokenizer(), tiny_t5_tokenizer()

Weights are random: outputs are meaningless but deterministic for a given seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .clip import image_processor_config

__all__ = [
    "TEXT_DIM",
    "build_tiny_clip",
    "build_tiny_if",
    "build_tiny_pixel_prior",
    "build_tiny_sd",
    "tiny_clip_tokenizer",
    "tiny_t5_tokenizer",
]

TEXT_DIM = 32  # hidden size of the tiny text encoders (= UNet cross-attention dim)
MAX_TOKENS = 77
# The size of every tiny CLIP tower: the text encoders, and build_tiny_clip's vision tower.
_TOWER = dict(hidden_size=TEXT_DIM, intermediate_size=2 * TEXT_DIM, num_hidden_layers=2, num_attention_heads=4)


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for the bytes 0..255 (ordered by byte)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tiny_clip_tokenizer():
    """A CLIPTokenizer over the 256 bytes (+ end-of-word forms) and the two specials: 514 tokens, no merges."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def tiny_t5_tokenizer():
    """A T5Tokenizer (Unigram) over printable ASCII + the word-start mark: 99 tokens, built in memory."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -0.5)]
    vocab += [(chr(c), -1.0) for c in range(32, 127)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=MAX_TOKENS)


def _clip_text_config(vocab_size: int = 514):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        **_TOWER,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
        projection_dim=16,
    )


def _scheduler(prediction_type: str, variance_type: str = "fixed_small"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type=prediction_type,
        variance_type=variance_type,
        clip_sample=False,
    )


def _sd_unet(in_channels: int, out_channels: int, sample_size: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def _write_index(path: Path, class_name: str, components: dict[str, object]) -> None:
    """model_index.json as diffusers writes it: component -> [library, class name]."""
    import diffusers

    index = {"_class_name": class_name, "_diffusers_version": diffusers.__version__}
    for name, obj in components.items():
        library = type(obj).__module__.split(".")[0]
        index[name] = [library, type(obj).__name__]
    path.mkdir(parents=True, exist_ok=True)
    (path / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _save(path: Path, class_name: str, components: dict[str, object], weights_dtype: torch.dtype) -> Path:
    path = Path(path)
    for name, obj in components.items():
        if isinstance(obj, torch.nn.Module) and weights_dtype != torch.float32:
            torch.nn.Module.to(obj, weights_dtype).save_pretrained(path / name)  # plain cast, no diffusers warning
        else:
            obj.save_pretrained(path / name)
    _write_index(path, class_name, components)
    return path


def build_tiny_sd(
    path, prediction_type: str = "epsilon", weights_dtype: torch.dtype = torch.float32, seed: int = 0
) -> Path:
    """A Stable-Diffusion-layout folder: UNet on 4x32x32 latents, 2-level VAE (f=2, so 64 px images), CLIP text."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    parts = {
        "unet": _sd_unet(4, 4, 32),
        "vae": AutoencoderKL(
            block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            norm_num_groups=8,
            layers_per_block=1,
            sample_size=64,
        ),
        "text_encoder": CLIPTextModel(_clip_text_config()),
        "tokenizer": tiny_clip_tokenizer(),
        "scheduler": _scheduler(prediction_type),
    }
    return _save(path, "StableDiffusionPipeline", parts, weights_dtype)


def build_tiny_if(path, seed: int = 0, weights_dtype: torch.dtype = torch.float32) -> Path:
    """A DeepFloyd-IF-stage-I-layout folder: pixel UNet 3 -> 6 channels (eps + learned variance) at 32 px, T5."""
    from diffusers import UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tokenizer = tiny_t5_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=3,
        out_channels=6,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        encoder_hid_dim=TEXT_DIM,
        encoder_hid_dim_type="text_proj",
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        resnet_time_scale_shift="scale_shift",
        norm_num_groups=8,
        act_fn="gelu",
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    parts = {
        "unet": unet,
        "text_encoder": t5,
        "tokenizer": tokenizer,
        "scheduler": _scheduler("epsilon", variance_type="learned_range"),
    }
    return _save(path, "IFPipeline", parts, weights_dtype)


def build_tiny_pixel_prior(
    path, seed: int = 0, prediction_type: str = "epsilon", weights_dtype: torch.dtype = torch.float32
) -> Path:
    """tristudio's small-world prior layout: pixel UNet 3 -> 3 channels at 32 px, CLIP text encoder, no vae."""
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    parts = {
        "unet": _sd_unet(3, 3, 32),
        "text_encoder": CLIPTextModel(_clip_text_config()),
        "tokenizer": tiny_clip_tokenizer(),
        "scheduler": _scheduler(prediction_type),
    }
    return _save(path, "TriStudioPixelPriorPipeline", parts, weights_dtype)


def build_tiny_clip(path, with_image_processor: bool = True, seed: int = 0) -> Path:
    """A transformers CLIPModel folder (32 px vision tower, 16-d projection) + tokenizer (+ preprocessor_config)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=_clip_text_config().to_dict(),
        vision_config=dict(image_size=32, patch_size=8, num_channels=3, **_TOWER),
        projection_dim=16,
    )
    path = Path(path)
    CLIPModel(config).save_pretrained(path)
    tiny_clip_tokenizer().save_pretrained(path)
    if with_image_processor:
        processor = image_processor_config(config.vision_config.image_size)
        (path / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    return path
