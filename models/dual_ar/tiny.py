"""A tiny randomly initialised Dual-AR checkpoint in the released format, for tests and demos.

Its tokenizer is byte-level (every byte a token) plus the S2 control and semantic tokens, laid out as S2-Pro's
are after Qwen3's; its config says `"s2data": {"random_init": true}`, so whatever loads it can say so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from models.dual_ar.checkpoint import save_s2_checkpoint
from models.dual_ar.config import DualARConfig, StackConfig
from models.dual_ar.model import DualARTransformer
from models.dual_ar.tokens import TokenIds, byte_level_tokenizer, extend_tokenizer, padded_vocab_size


def init_tiny(
    folder: str | Path,
    seed: int = 0,
    *,
    num_codebooks: int = 10,
    codebook_size: int = 4096,
    dim: int = 32,
    n_layer: int = 2,
    max_seq_len: int = 4096,
) -> Path:
    """Write a random-init checkpoint (config.json, safetensors, tokenizer) to `folder`. The defaults have the
    S2 codec's 10 codebooks and 4,096 semantic tokens, so its codes fit the codec."""
    tokenizer = extend_tokenizer(byte_level_tokenizer(), codebook_size)
    ids = TokenIds.from_tokenizer(tokenizer, codebook_size)
    slow = StackConfig(
        n_layer=n_layer,
        dim=dim,
        n_head=4,
        n_local_heads=2,
        head_dim=dim // 4,
        intermediate_size=2 * dim,
        attention_qk_norm=True,
    )
    config = DualARConfig(
        slow=slow,
        fast=dataclasses.replace(slow, attention_qk_norm=False),
        vocab_size=padded_vocab_size(len(tokenizer)),
        codebook_size=codebook_size,
        num_codebooks=num_codebooks,
        semantic_begin_id=ids.semantic_begin,
        semantic_end_id=ids.semantic_end,
        rope_base=1_000_000.0,
        norm_eps=1e-6,
        max_seq_len=max_seq_len,
        random_init=True,
    )
    model = DualARTransformer(config)
    model.init_weights(seed)
    return save_s2_checkpoint(model, tokenizer, folder)
