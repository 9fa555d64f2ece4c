"""The Dual-AR model's configuration, read from and written to the released `config.json` (`fish_qwen3_omni`).

The released file has two sub-configs: `text_config` (the slow AR) and `audio_decoder_config` (the fast AR:
its `vocab_size` is the codebook size), plus the semantic token range at the top level. Fields the fast AR does
not set fall back to the slow AR's, as in the reference; the fast layers always use the slow `norm_eps` and
`rope_base`. What is ours and not the reference's sits under one top-level key, `s2data`, which the reference's
loader ignores: `codebook_embedding_scale`, `rope_dtype` and `random_init` (see models/dual_ar/__init__.py).

Torch-free, so that a process which only checks a checkpoint (the driver) can read it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

MODEL_TYPE = "fish_qwen3_omni"
OURS = "s2data"  # our additions to the released config.json, in one place
ROPE_DTYPES = ("bfloat16", "float32")


class ConfigError(ValueError):
    """A config.json that cannot describe a Dual-AR model; the message is one line naming the field."""


@dataclass(frozen=True)
class StackConfig:
    """One transformer stack (the slow or the fast AR)."""

    n_layer: int
    dim: int
    n_head: int
    n_local_heads: int  # key/value heads (GQA)
    head_dim: int
    intermediate_size: int
    attention_qkv_bias: bool = False
    attention_o_bias: bool = False
    attention_qk_norm: bool = False

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ConfigError(f"{f.name} must be a positive integer, got {value!r}")
        if self.n_head % self.n_local_heads:
            raise ConfigError(f"n_head {self.n_head} is not a multiple of n_local_heads {self.n_local_heads}")
        if self.head_dim % 2:
            raise ConfigError(f"head_dim {self.head_dim} must be even (RoPE rotates pairs)")


@dataclass(frozen=True)
class DualARConfig:
    slow: StackConfig
    fast: StackConfig
    vocab_size: int
    codebook_size: int
    num_codebooks: int
    semantic_begin_id: int
    semantic_end_id: int
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 2048
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    # Multiplies the fused input (Eq. 1) at semantic positions, in training and in generation alike.
    # None = 1/sqrt(N+1), what the reference applies to released checkpoints when it generates.
    codebook_embedding_scale: float | None = None
    # dtype of the RoPE cos/sin table: the reference rounds it to bfloat16; Qwen3 (transformers) keeps float32.
    rope_dtype: str = "bfloat16"
    random_init: bool = False
    # released fields this model does not use, carried through unchanged: {"": top level, "text_config": ..., ...}
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.rope_dtype not in ROPE_DTYPES:
            raise ConfigError(f"{OURS}.rope_dtype: {self.rope_dtype!r} is not one of {', '.join(ROPE_DTYPES)}")
        n_semantic = self.semantic_end_id - self.semantic_begin_id + 1
        if n_semantic != self.codebook_size:
            raise ConfigError(
                f"semantic_start_token_id..semantic_end_token_id ({self.semantic_begin_id}..{self.semantic_end_id}) "
                f"spans {n_semantic} tokens, but audio_decoder_config.vocab_size (the codebook size) is {self.codebook_size}"
            )
        if not 0 <= self.semantic_begin_id <= self.semantic_end_id < self.vocab_size:
            raise ConfigError(
                f"semantic token range {self.semantic_begin_id}..{self.semantic_end_id} lies outside the vocabulary (text_config.vocab_size {self.vocab_size})"
            )

    @property
    def embedding_scale(self) -> float:
        if self.codebook_embedding_scale is not None:
            return self.codebook_embedding_scale
        return 1.0 / math.sqrt(self.num_codebooks + 1)

    def replace(self, **changes) -> DualARConfig:
        return dataclasses.replace(self, **changes)

    # --- the released config.json ---------------------------------------------------------------------------

    @classmethod
    def from_released(cls, data: dict, source: str = "config.json") -> DualARConfig:
        if data.get("model_type") != MODEL_TYPE:
            raise ConfigError(f"{source}: model_type is {data.get('model_type')!r}, expected {MODEL_TYPE!r}")
        data = _Section(data, "")
        try:
            tc, adc = (
                _Section(data["text_config"], "text_config."),
                _Section(data["audio_decoder_config"], "audio_decoder_config."),
            )
            slow = _stack(tc, defaults=None)
            fast = _stack(adc, defaults=slow)
            ours = data.get(OURS, {})
            return cls(
                slow=slow,
                fast=fast,
                vocab_size=tc["vocab_size"],
                codebook_size=adc["vocab_size"],
                num_codebooks=adc["num_codebooks"],
                semantic_begin_id=data["semantic_start_token_id"],
                semantic_end_id=data["semantic_end_token_id"],
                rope_base=tc.get("rope_base", 10000.0),
                norm_eps=tc.get("norm_eps", 1e-5),
                max_seq_len=tc.get("max_seq_len", 2048),
                tie_word_embeddings=tc.get("tie_word_embeddings", True),
                initializer_range=tc.get("initializer_range", 0.02),
                codebook_embedding_scale=ours.get("codebook_embedding_scale"),
                rope_dtype=ours.get("rope_dtype", "bfloat16"),
                random_init=ours.get("random_init", False),
                extra={
                    "": {k: v for k, v in data.items() if k not in _TOP_KEYS},
                    "text_config": {k: v for k, v in tc.items() if k not in _TEXT_KEYS},
                    "audio_decoder_config": {k: v for k, v in adc.items() if k not in _AUDIO_KEYS},
                },
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_released(self) -> dict:
        extra = self.extra
        tc = {
            **extra.get("text_config", {}),
            "vocab_size": self.vocab_size,
            **_stack_fields(self.slow),
            "rope_base": self.rope_base,
            "norm_eps": self.norm_eps,
            "max_seq_len": self.max_seq_len,
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range,
        }
        adc = {
            **extra.get("audio_decoder_config", {}),
            "vocab_size": self.codebook_size,
            "num_codebooks": self.num_codebooks,
            **_stack_fields(self.fast),
        }
        ours = {
            "codebook_embedding_scale": self.embedding_scale,
            "rope_dtype": self.rope_dtype,
            "random_init": self.random_init,
        }
        return {
            **extra.get("", {}),
            "model_type": MODEL_TYPE,
            "semantic_start_token_id": self.semantic_begin_id,
            "semantic_end_token_id": self.semantic_end_id,
            "text_config": tc,
            "audio_decoder_config": adc,
            OURS: ours,
        }

    @classmethod
    def load(cls, folder: str | Path) -> DualARConfig:
        path = Path(folder) / "config.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file (a released S2 checkpoint folder holds config.json)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON ({exc})") from None
        return cls.from_released(data, str(path))


class _Section(dict):
    """A part of config.json whose missing fields are reported by their path."""

    def __init__(self, data: dict, path: str):
        super().__init__(data)
        self.path = path

    def __missing__(self, key: str):
        raise ConfigError(f"missing field {self.path}{key}")


_TOP_KEYS = {
    "model_type",
    "semantic_start_token_id",
    "semantic_end_token_id",
    "text_config",
    "audio_decoder_config",
    OURS,
}
_STACK_KEYS = {
    "n_layer",
    "dim",
    "n_head",
    "n_local_heads",
    "head_dim",
    "intermediate_size",
    "attention_qkv_bias",
    "attention_o_bias",
    "attention_qk_norm",
}
_TEXT_KEYS = _STACK_KEYS | {
    "vocab_size",
    "rope_base",
    "norm_eps",
    "max_seq_len",
    "tie_word_embeddings",
    "initializer_range",
}
_AUDIO_KEYS = _STACK_KEYS | {"vocab_size", "num_codebooks"}


def _default_intermediate(dim: int) -> int:
    """The reference's default FFN width: 2/3 of 4*dim, rounded up to a multiple of 256."""
    hidden = int(2 * 4 * dim / 3)
    return -(-hidden // 256) * 256


def _stack(c: dict, defaults: StackConfig | None) -> StackConfig:
    def pick(key: str, fallback):
        value = c.get(key)
        return fallback if value is None else value

    if defaults is None:
        dim, n_head = c["dim"], c["n_head"]
        n_local = c.get("n_local_heads", -1)
        return StackConfig(
            n_layer=c["n_layer"],
            dim=dim,
            n_head=n_head,
            n_local_heads=n_head if n_local in (None, -1) else n_local,
            head_dim=pick("head_dim", dim // n_head),
            intermediate_size=pick("intermediate_size", _default_intermediate(dim)),
            attention_qkv_bias=c.get("attention_qkv_bias", False),
            attention_o_bias=c.get("attention_o_bias", False),
            attention_qk_norm=c.get("attention_qk_norm", False),
        )
    return StackConfig(
        n_layer=c["n_layer"],
        dim=pick("dim", defaults.dim),
        n_head=pick("n_head", defaults.n_head),
        n_local_heads=pick("n_local_heads", defaults.n_local_heads),
        head_dim=pick("head_dim", defaults.head_dim),
        intermediate_size=pick("intermediate_size", defaults.intermediate_size),
        attention_qkv_bias=pick("attention_qkv_bias", defaults.attention_qkv_bias),
        attention_o_bias=pick("attention_o_bias", defaults.attention_o_bias),
        attention_qk_norm=pick("attention_qk_norm", defaults.attention_qk_norm),
    )


def _stack_fields(s: StackConfig) -> dict:
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
