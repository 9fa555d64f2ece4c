"""The S2 vocabulary: control tokens, the semantic token range, and the tokenizer files.

S2-Pro extends Qwen3's tokenizer with the control tokens below that Qwen3 lacks, then `<|semantic:0|>` ..
`<|semantic:4095|>`, in this order, right after Qwen3's last token: `<|pad|>` 151669 ... `<|audio_pad|>` 151677,
semantic 151678-155773, and the embedding matrix padded to 155,776 rows (a multiple of 64).
`extend_tokenizer` does exactly that to any tokenizer, so a tiny one gets the same layout after its own tokens.
Speaker tags (`<|speaker:0|>`) and vocal tags (`[laugh]`) stay plain text.

Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PHONEME_START = "<|phoneme_start|>"
PHONEME_END = "<|phoneme_end|>"
TEXT = "<|text|>"
VOICE = "<|voice|>"
INTERLEAVE = "<|interleave|>"
AUDIO_START = "<|audio_start|>"
AUDIO_END = "<|audio_end|>"
AUDIO_PAD = "<|audio_pad|>"
# the reference's order, which fixes the ids of those a base tokenizer lacks
CONTROL_TOKENS = (
    EOS,
    PAD,
    IM_START,
    IM_END,
    PHONEME_START,
    PHONEME_END,
    TEXT,
    VOICE,
    INTERLEAVE,
    AUDIO_START,
    AUDIO_END,
    AUDIO_PAD,
)
# what a Qwen-style base tokenizer already has (our tiny byte-level base has these too)
BASE_TOKENS = (EOS, IM_START, IM_END)
SEMANTIC_TOKENS = 4096
VOCAB_MULTIPLE = 64


class TokenizerError(ValueError):
    """A tokenizer that does not fit the S2 layout; the message is one line."""


def semantic_token(code: int) -> str:
    return f"<|semantic:{code}|>"


def padded_vocab_size(n_tokens: int) -> int:
    return -(-n_tokens // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


@dataclass(frozen=True)
class TokenIds:
    """Ids of the tokens the prompt builder and the sampler use."""

    im_start: int
    im_end: int
    voice: int
    pad: int
    semantic_begin: int
    semantic_end: int

    @classmethod
    def from_tokenizer(cls, tokenizer, codebook_size: int, source: str = "tokenizer") -> TokenIds:
        vocab = tokenizer.get_vocab()
        absent = [t for t in (IM_START, IM_END, VOICE, PAD) if t not in vocab]
        if absent:
            raise TokenizerError(f"{source}: lacks the control tokens {', '.join(absent)}")
        begin = vocab.get(semantic_token(0))
        bad = [i for i in range(codebook_size) if begin is None or vocab.get(semantic_token(i)) != begin + i]
        if bad:
            raise TokenizerError(
                f"{source}: {semantic_token(bad[0])} is missing or out of place; the {codebook_size} semantic tokens must have contiguous ids"
            )
        return cls(
            im_start=vocab[IM_START],
            im_end=vocab[IM_END],
            voice=vocab[VOICE],
            pad=vocab[PAD],
            semantic_begin=begin,
            semantic_end=begin + codebook_size - 1,
        )


def extend_tokenizer(tokenizer, codebook_size: int = SEMANTIC_TOKENS):
    """Add the control tokens the tokenizer lacks, then the semantic tokens, as special tokens after its last id
    (in place; returns it). The model's vocabulary is then `padded_vocab_size(len(tokenizer))`."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in CONTROL_TOKENS if t not in vocab]
    if any(semantic_token(i) in vocab for i in range(codebook_size)):
        raise TokenizerError("tokenizer already has semantic tokens; extend a base (text) tokenizer")
    tokenizer.add_tokens(missing + [semantic_token(i) for i in range(codebook_size)], special_tokens=True)
    return tokenizer


def _byte_alphabet() -> list[str]:
    """GPT-2's printable stand-in character for every byte value, indexed by the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def byte_level_tokenizer():
    """A tiny stand-in for Qwen3's tokenizer: one token per byte (ids 0-255, no merges), then <|endoftext|>,
    <|im_start|>, <|im_end|>. It encodes any text, losslessly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(vocab={c: b for b, c in enumerate(_byte_alphabet())}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.add_tokens(list(BASE_TOKENS), special_tokens=True)
    return tokenizer


def load_tokenizer(folder: str | Path):
    """The tokenizer saved in a folder (tokenizer.json, with tokenizer_config.json when there is one). Read as a
    plain fast tokenizer: AutoTokenizer would look at config.json, whose model type transformers does not know."""
    from transformers import PreTrainedTokenizerFast

    if not (Path(folder) / "tokenizer.json").is_file():
        raise TokenizerError(f"{folder}: no tokenizer.json")
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    """tokenizer.json plus a tokenizer_config.json that transformers 4.x (the reference's) and 5.x both read."""
    folder = Path(folder)
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": tokenizer.model_max_length,
        "clean_up_tokenization_spaces": False,
    }
    for name in ("eos_token", "pad_token", "bos_token", "unk_token"):
        if getattr(tokenizer, name, None) is not None:
            config[name] = str(getattr(tokenizer, name))
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
