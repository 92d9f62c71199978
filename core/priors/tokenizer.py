"""A real `CLIPTokenizer` for the small-world CLIP, built without the hub.

    clip_bpe_tokenizer(source) -> CLIPTokenizer     OpenAI CLIP's BPE (49,408 tokens, ids identical to OpenAI CLIP)
    byte_level_tokenizer() -> CLIPTokenizer          fallback: 256 bytes (+ end-of-word forms) + 2 specials, no merges

`source` is OpenAI's merges file `bpe_simple_vocab_16e6.txt.gz` or a wheel / zip that holds it (the open-clip-torch
wheel from `pip download open-clip-torch --no-deps`; it is read from the zip, never installed). The vocabulary is
derived from the merges list the way CLIP does it: the 256 byte symbols, the same with the end-of-word mark `</w>`,
one token per merge (48,894 merges) and the two specials <|startoftext|> = 49406, <|endoftext|> = 49407.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

from .testing import tiny_clip_tokenizer

__all__ = ["BPE_FILE", "N_MERGES", "byte_level_tokenizer", "clip_bpe_tokenizer", "find_bpe_source", "read_bpe_merges"]

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # CLIP keeps this many merges: 2 * 256 byte tokens + merges + 2 specials = 49,408
MAX_TOKENS = 77


def read_bpe_merges(source: str | os.PathLike) -> list[tuple[str, str]]:
    """The first N_MERGES merges of CLIP's BPE file, from the .txt.gz itself or from a wheel/zip containing it."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"no CLIP BPE file at {source} (expected {BPE_FILE} or a wheel holding it)")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            names = [n for n in z.namelist() if n.endswith(BPE_FILE)]
            if not names:
                raise FileNotFoundError(f"{source} holds no {BPE_FILE}")
            raw = z.read(names[0])
    else:
        raw = source.read_bytes()
    try:
        lines = gzip.decompress(raw).decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # not gzip, cut short, not text
        raise ValueError(f"{source} is not CLIP's BPE vocabulary ({BPE_FILE}: gzipped text): {exc}") from None
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]  # line 0 is a version header
    if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{source}: expected {N_MERGES} two-symbol merges in {BPE_FILE}")
    return merges


def _clip_byte_symbols() -> list[str]:
    """CLIP's 256 byte symbols in vocabulary order: the 188 printable bytes as themselves (by byte value), then the
    other 68 bytes as chr(256 + n) in byte order (the GPT-2 byte-to-unicode table, ordered as CLIP enumerates it)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    other = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + n) for n in range(len(other))]


def clip_bpe_tokenizer(source: str | os.PathLike):
    """OpenAI CLIP's tokenizer (lower-cased BPE, 77 tokens) from the BPE merges file (see the module docstring)."""
    from transformers import CLIPTokenizer

    merges = read_bpe_merges(source)
    chars = _clip_byte_symbols()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != 49408:
        raise ValueError(f"CLIP vocabulary built from {source} has {len(vocab)} tokens, expected 49408")
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def byte_level_tokenizer():
    """The no-data fallback: a CLIPTokenizer over bytes only (514 tokens; see core/priors/testing.py)."""
    return tiny_clip_tokenizer()


def find_bpe_source(*candidates: str | os.PathLike | None) -> Path | None:
    """The first existing candidate, else an open-clip-torch wheel in /tmp/oc or the pip cache download folder."""
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    for folder in (Path("/tmp/oc"), Path.home() / ".cache" / "tristudio"):
        if folder.is_dir():
            for p in sorted(folder.glob("open_clip_torch-*.whl")) + sorted(folder.glob(BPE_FILE)):
                return p
    return None
