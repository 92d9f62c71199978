"""The small-world CLIP: a transformers `CLIPModel` trained contrastively on captioned renders of the procedural
worlds (objects and heads, core/priors/renders.py).

    trainer = ClipTrainer(ClipConfig(...), tokenizer, renders)        renders: a RenderSet (core/priors/renders.py)
    trainer.train_step() -> {"loss": ..., "logit_scale": ...}
    trainer.export(folder)    save_pretrained model + tokenizer + preprocessor_config.json: a folder `load_clip` reads
    retrieval_report(clip, held_out) -> {"shape_color_top1": ..., "view_top1": ...}

Loss: symmetric InfoNCE over the batch with a learnable temperature (CLIP's logit_scale, capped at 100). Captions
repeat within a batch (77 shape x colour pairs), so every item with the same caption counts as a positive (the
target row is uniform over them) instead of being pushed apart as a false negative.
Captions: "a [material] <colour> <shape>[, <view word>]" with the material and the view word each kept with p = 0.5;
heads: "a head with <hair> hair and <skin> skin[, <view word>]".
Images: renders box-downsampled to image_size (32 px by default, the prior's resolution). Optional augmentation: with
p_lowres an image is box-downsampled to half size and bicubic-upsampled back (blur robustness).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..worlds.captions import MATERIALS, VIEW_WORDS, head_caption, head_prompts, object_caption, shape_color_prompts
from .clip import CLIP_MEAN, CLIP_STD, ClipModel, image_processor_config
from .renders import RenderSet
from .trainloop import TrainConfig, TrainState, check_box_downsample, optimizer_step, scheduled_lr

__all__ = ["ClipConfig", "ClipTrainer", "build_clip_model", "contrastive_loss", "retrieval_report"]

MAX_LOGIT_SCALE = 4.6052  # ln(100), CLIP's cap


@dataclass
class ClipConfig(TrainConfig):
    image_size: int = 32
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 4
    text_width: int = 96
    text_layers: int = 4
    heads: int = 4
    projection_dim: int = 128
    weight_decay: float = 0.1
    p_lowres: float = 0.0
    # TrainConfig's fields with the CLIP's defaults
    batch_size: int = 128
    steps: int = 3000
    p_view: float = 0.5


def build_clip_model(cfg: ClipConfig, tokenizer):
    """A randomly initialised CLIPModel sized by cfg, with the tokenizer's vocabulary and special tokens."""
    from transformers import CLIPConfig, CLIPModel

    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_width,
        intermediate_size=4 * cfg.text_width,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.heads,
        max_position_embeddings=int(tokenizer.model_max_length),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        hidden_size=cfg.vision_width,
        intermediate_size=4 * cfg.vision_width,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.heads,
        num_channels=3,
    )
    torch.manual_seed(cfg.seed)
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=cfg.projection_dim))


def contrastive_loss(model, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor, groups: Tensor) -> Tensor:
    """Symmetric InfoNCE. pixel_values (B, 3, S, S) normalised; input_ids / attention_mask (B, L); groups (B,) ints,
    equal for items with the same caption (all of them are positives of each other)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values)
    img, txt = out.image_embeds, out.text_embeds  # (B, D) unit vectors
    logits = model.logit_scale.exp() * img @ txt.T  # (B, B): image i vs text j
    same = (groups[:, None] == groups[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    loss_i = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_i + loss_t) / 2


def _normalise(images: Tensor) -> Tensor:
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (images - mean) / std


class ClipTrainer:
    def __init__(self, cfg: ClipConfig, tokenizer, renders: RenderSet, model=None):
        self.cfg, self.tokenizer, self.renders = cfg, tokenizer, renders
        check_box_downsample(renders.images.shape[1], cfg.image_size, "--image-size")
        self.model = model if model is not None else build_clip_model(cfg, tokenizer)
        self.model.train()
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        rest = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.98),
            eps=1e-6,
        )
        self.state = TrainState({"model": self.model}, self.optimizer, cfg.seed)

    def batch(self) -> tuple[Tensor, dict, Tensor]:
        """(pixel_values (B, 3, S, S), tokens, groups (B,)) for the next random batch."""
        cfg, st = self.cfg, self.state
        index = torch.randint(len(self.renders), (cfg.batch_size,), generator=st.gen)
        images = self.renders.float_images(index)  # (B, 3, H, W) in [0, 1]
        s = cfg.image_size
        if images.shape[-1] != s:
            images = F.interpolate(images, size=(s, s), mode="area")  # (B, 3, S, S)
        low = torch.rand(cfg.batch_size, generator=st.gen) < cfg.p_lowres
        if low.any():
            small = F.interpolate(images[low], size=(s // 2, s // 2), mode="area")
            images[low] = F.interpolate(small, size=(s, s), mode="bicubic", align_corners=False).clamp(0, 1)
        captions = self.renders.random_captions(index.tolist(), st.rng, cfg.p_material, cfg.p_view)
        tokens = self.tokenizer(captions, padding=True, return_tensors="pt")
        names = {c: i for i, c in enumerate(dict.fromkeys(captions))}
        groups = torch.tensor([names[c] for c in captions])
        return _normalise(images), tokens, groups

    def train_step(self) -> dict:
        st = self.state
        lr = scheduled_lr(self.optimizer, st.step, self.cfg)
        pixels, tokens, groups = self.batch()
        loss = contrastive_loss(self.model, pixels, tokens.input_ids, tokens.attention_mask, groups)
        optimizer_step(self.optimizer, loss, self.model.parameters())
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        st.step += 1
        return {"step": st.step, "loss": loss.item(), "lr": lr, "logit_scale": self.model.logit_scale.exp().item()}

    def export(self, folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
        """Save model + tokenizer + preprocessor_config.json (a transformers CLIPModel folder `load_clip` reads)."""
        return export_clip(self.model, self.tokenizer, folder, dtype)


def export_clip(model, tokenizer, folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
    """Write the folder atomically (a reader sees the old folder or the new one). dtype float16 halves the size;
    `load_clip` casts back to float32."""
    import copy

    from ..io.atomic import atomic_path

    folder = Path(folder)
    size = int(model.config.vision_config.image_size)
    with atomic_path(folder, is_dir=True) as tmp:
        out = copy.deepcopy(model).to(dtype) if dtype != torch.float32 else model
        out.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "preprocessor_config.json").write_text(json.dumps(image_processor_config(size), indent=2) + "\n")
    return folder


def _pair_top1(
    clip: ClipModel,
    image: Tensor,
    items: list[int],
    own: list[tuple[str, str]],
    prompts: list[tuple[str, str, str]],
    view_caption: Callable[[str, str, str], str],
) -> tuple[tuple[float, float, float], list[str]]:
    """For the images image[items] (embeddings, rows of (N, D)) whose true word pairs are own[k] = (a, b): the
    fractions whose first-ranked caption among all (a', b', caption) `prompts` has the right a, the right b, both;
    and each item's best view word among the view_caption(a, b, view) variants of its own caption."""
    text = clip.embed_text([p for _, _, p in prompts])  # (P, D)
    best = (image[items] @ text.T).argmax(dim=1).tolist()
    hits = [(prompts[b][0] == a, prompts[b][1] == c) for (a, c), b in zip(own, best, strict=True)]
    n = len(items)
    top1 = sum(a for a, _ in hits) / n, sum(c for _, c in hits) / n, sum(a and c for a, c in hits) / n
    return top1, _best_words(clip, image, items, own, view_caption, VIEW_WORDS)


def _best_words(clip, image, items, own, caption: Callable[[str, str, str], str], words: Sequence[str]) -> list[str]:
    """For each item, the word w of `words` whose caption(*own[k], w) best matches its image (text embedded once per
    distinct own pair)."""
    text: dict[tuple[str, str], Tensor] = {}
    out = []
    for i, key in zip(items, own, strict=True):
        if key not in text:
            text[key] = clip.embed_text([caption(*key, w) for w in words])  # (len(words), D)
        out.append(words[int((image[i] @ text[key].T).argmax())])
    return out


def _hit_rate(found: list[str], truth: Sequence[str], items: list[int]) -> float:
    return sum(w == truth[i] for w, i in zip(found, items, strict=True)) / len(items)


@torch.no_grad()
def retrieval_report(clip: ClipModel, renders: RenderSet, batch_size: int = 256) -> dict:
    """Top-1 retrieval on (held-out) renders through a loaded ClipModel.

    Object items (if any):
      shape_color_top1: own "a <colour> <shape>" ranked first among all shape x colour captions (chance 1/77);
      shape_top1 / color_top1: the first-ranked caption has the right shape / colour;
      view_top1: own view word ranked first among "<own caption>, <view>" for the 4 view words (chance 1/4);
      material_top1: own material first among "a <material> <colour> <shape>" for the 2 materials (chance 1/2).
    Head items (if any):
      head_top1: own "a head with <hair> hair and <skin> skin" first among the 25 head captions (chance 1/25);
      hair_top1 / skin_top1: the first-ranked head caption has the right hair colour / skin tone;
      head_view_top1: own view word first among the 4 view variants of the own caption (chance 1/4);
      head_back_as_front: fraction of back views whose best view word is "front view" (the Janus test's error)."""
    image = torch.cat(
        [clip.embed_images(renders.float_images(slice(i, i + batch_size))) for i in range(0, len(renders), batch_size)]
    )  # (N, D)
    views = renders.view
    report: dict = {"n_images": len(renders)}
    objects, heads = renders.where(False), renders.where(True)
    if objects:
        prompts = shape_color_prompts()
        own = [(renders.shape[i], renders.color[i]) for i in objects]
        (shape_top1, color_top1, both_top1), view = _pair_top1(
            clip, image, objects, own, prompts, lambda s, c, v: object_caption(s, c, None, v)
        )
        material = _best_words(clip, image, objects, own, object_caption, list(MATERIALS))
        report.update(
            {
                "n_objects": len(objects),
                "shape_color_top1": both_top1,
                "shape_top1": shape_top1,
                "color_top1": color_top1,
                "view_top1": _hit_rate(view, views, objects),
                "material_top1": _hit_rate(material, renders.material, objects),
                "chance_shape_color": 1 / len(prompts),
            }
        )
    if heads:
        prompts = head_prompts()
        own = [(renders.color[i], renders.material[i]) for i in heads]  # (hair, skin)
        (hair_top1, skin_top1, both_top1), view = _pair_top1(clip, image, heads, own, prompts, head_caption)
        backs = [w for w, i in zip(view, heads, strict=True) if views[i] == "back view"]
        report.update(
            {
                "n_heads": len(heads),
                "head_top1": both_top1,
                "hair_top1": hair_top1,
                "skin_top1": skin_top1,
                "head_view_top1": _hit_rate(view, views, heads),
                "head_back_as_front": sum(w == "front view" for w in backs) / len(backs) if backs else float("nan"),
                "chance_head": 1 / len(prompts),
            }
        )
    return report


def _tokenizer_for(work: Path, bpe: str | os.PathLike | None, resume: bool, vocab_size: int | None = None):
    """The run's tokenizer: a resumed run's saved one (refused unless it fits the vocab_size its config.json
    records, see common.load_tokenizer), else a new one saved in work/tokenizer."""
    from transformers import AutoTokenizer

    from .common import load_tokenizer
    from .tokenizer import byte_level_tokenizer, clip_bpe_tokenizer, find_bpe_source

    folder = work / "tokenizer"
    if resume and folder.is_dir():
        if vocab_size is None:  # a run from before config.json recorded it
            return AutoTokenizer.from_pretrained(str(folder), local_files_only=True), "saved"
        tower = "text tower of the run's checkpoints"
        return load_tokenizer(AutoTokenizer, folder, "a train clip run", tower, vocab_size), "saved"
    source = find_bpe_source(bpe)
    if bpe and source is None:
        raise FileNotFoundError(f"no CLIP BPE file at {bpe}")
    tok, kind = (
        (clip_bpe_tokenizer(source), f"openai-clip-bpe ({source.name})")
        if source
        else (byte_level_tokenizer(), "byte-level (no CLIP BPE file found)")
    )
    tok.save_pretrained(str(folder))
    return tok, kind


def run_clip_training(
    work: str | os.PathLike,
    cfg: ClipConfig | None = None,
    data: list[str] | None = None,
    held_out: str | None = None,
    bpe: str | os.PathLike | None = None,
    resume: bool = False,
    steps: int | None = None,
    ckpt_every: int = 200,
    eval_every: int = 500,
    export_dtype: torch.dtype = torch.float16,
    callback=None,
) -> dict:
    """Train (or resume) a small-world CLIP in `work`; export to work/export and evaluate on `held_out` renders
    every eval_every steps and at the end. callback(record) sees every step's record. Returns the last report."""
    from .renders import load_render_sets
    from .trainloop import open_run, run_config, run_steps

    work = Path(work)
    run, saved = open_run(work, resume, ckpt_every)
    if saved is not None:
        data, held_out = saved["data"], saved.get("held_out")
    elif not data:
        raise ValueError("no training data: pass render-set folders (tristudio renders make)")
    cfg = run_config(run, saved, "clip", ClipConfig, cfg, steps)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer, tok_kind = _tokenizer_for(work, bpe, resume, (saved or {}).get("vocab_size"))
    run.write_config(
        {
            "kind": "clip",
            "clip": asdict(cfg),
            "data": list(data),
            "held_out": held_out,
            "tokenizer": tok_kind if not resume else saved.get("tokenizer"),
            "vocab_size": len(tokenizer),
        },
    )
    renders = load_render_sets(data)
    held = load_render_sets([held_out]) if held_out else None
    trainer = ClipTrainer(cfg, tokenizer, renders)
    report: dict = {}

    def evaluate() -> dict:
        from .clip import load_clip as _load

        export = trainer.export(work / "export", export_dtype)
        rep = {"step": trainer.state.step, "eval": retrieval_report(_load(export, device="cpu"), held)} if held else {}
        if rep:
            run.log(rep)
            (work / "samples").mkdir(exist_ok=True)
            (work / "samples" / f"retrieval_{trainer.state.step:06d}.json").write_text(json.dumps(rep, indent=2))
        return rep

    def periodic() -> None:
        nonlocal report
        report = evaluate() or report
        if callback and report:
            callback(report)

    run_steps(run, trainer, "clip", eval_every, periodic, callback, resume)
    if not report:
        report = evaluate()
    return report
