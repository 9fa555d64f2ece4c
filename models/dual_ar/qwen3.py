"""A Dual-AR model started from a transformers Qwen3 checkpoint (Qwen3ForCausalLM), as S2 starts from Qwen3-4B.

- q, k, v projections are fused into `wqkv` rows [q; k; v].
- transformers rotates the pairs (j, j + head_dim/2) of a head (rotate_half); this model the pairs (2i, 2i+1).
  Reordering the rows of q and k within each head (new 2i <- old i, new 2i+1 <- old i + head_dim/2), and the
  q_norm/k_norm weights likewise, gives the same attention scores: both sides of q·k are permuted alike.
- The RoPE table stays float32 (`rope_dtype`), as transformers computes it, so text logits match Qwen3's.
- The vocabulary gains the control tokens and the semantic tokens (models.dual_ar.tokens: the S2-Pro ids for
  Qwen3's tokenizer). Their embedding rows (and LM-head rows when untied) are drawn from N(mu, Sigma), the mean
  and covariance of the existing text tokens' rows (the report, Section 4.2), with a generator seeded `seed`.
- The fast AR and the codebook embeddings are initialised as the reference initialises them, seeded `seed + 1`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import Tensor

from models.checkpoints import resolve_hf_checkpoint
from models.dual_ar.config import ConfigError, DualARConfig, StackConfig
from models.dual_ar.model import DualARTransformer
from models.dual_ar.tokens import SEMANTIC_TOKENS, TokenIds, extend_tokenizer, load_tokenizer, padded_vocab_size
from models.dual_ar.weights import CheckpointFormatError


def rotate_half_to_interleaved(weight: Tensor, head_dim: int) -> Tensor:
    """Reorder rows (dim 0) within each head from transformers' half-split RoPE pairing to interleaved pairs."""
    half = head_dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
    heads = weight.reshape(-1, head_dim, *weight.shape[1:])
    return heads[:, order].reshape(weight.shape)


def sample_like(rows: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """n rows drawn from N(mean, covariance) of `rows` [n_rows, dim] (float64; a singular covariance is fine)."""
    rows = rows.double()
    mu = rows.mean(0)
    centred = rows - mu
    sigma = centred.T @ centred / max(len(rows) - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    root = eigenvectors * eigenvalues.clamp(min=0).sqrt()
    return mu + torch.randn(n, rows.shape[1], generator=generator, dtype=torch.float64) @ root.T


def _read_hf(folder: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    )
    weights: dict[str, Tensor] = {}
    for name in files:
        if not (folder / name).is_file():
            raise CheckpointFormatError(f"{folder}: no {name} (transformers Qwen3 checkpoints are safetensors)")
        weights.update(load_file(str(folder / name)))
    return weights


def _rope_theta(hf: dict, source: str) -> float:
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise ConfigError(f"{source}: RoPE type {kind!r} is not supported (plain RoPE only)")
    theta = hf.get("rope_theta", params.get("rope_theta"))
    if theta is None:
        raise ConfigError(f"{source}: missing field 'rope_theta'")
    return float(theta)


def qwen3_config(
    hf: dict, ids: TokenIds, vocab_size: int, *, num_codebooks: int, fast_layers: int, source: str
) -> DualARConfig:
    if hf.get("model_type") != "qwen3":
        raise ConfigError(f"{source}: model_type is {hf.get('model_type')!r}, expected 'qwen3'")
    try:
        slow = StackConfig(
            n_layer=hf["num_hidden_layers"],
            dim=hf["hidden_size"],
            n_head=hf["num_attention_heads"],
            n_local_heads=hf["num_key_value_heads"],
            head_dim=hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            attention_qkv_bias=hf.get("attention_bias", False),
            attention_o_bias=hf.get("attention_bias", False),
            attention_qk_norm=True,
        )
        return DualARConfig(
            slow=slow,
            # the S2-Pro fast AR: the slow AR's widths, no qk-norm, no biases
            fast=dataclasses.replace(
                slow, n_layer=fast_layers, attention_qk_norm=False, attention_qkv_bias=False, attention_o_bias=False
            ),
            vocab_size=vocab_size,
            codebook_size=ids.semantic_end - ids.semantic_begin + 1,
            num_codebooks=num_codebooks,
            semantic_begin_id=ids.semantic_begin,
            semantic_end_id=ids.semantic_end,
            rope_base=_rope_theta(hf, source),
            norm_eps=hf["rms_norm_eps"],
            max_seq_len=hf["max_position_embeddings"],
            tie_word_embeddings=hf.get("tie_word_embeddings", False),
            initializer_range=hf.get("initializer_range", 0.02),
            rope_dtype="float32",
        )
    except KeyError as exc:
        raise ConfigError(f"{source}: missing field {exc.args[0]!r}") from None


def _slow_state(
    hf_weights: dict[str, Tensor], config: DualARConfig, n_text: int, generator: torch.Generator
) -> dict[str, Tensor]:
    """The slow AR's parameters under this model's names, from transformers' names."""
    w = dict(hf_weights)
    hd = config.slow.head_dim

    def take(key: str) -> Tensor:
        if key not in w:
            raise CheckpointFormatError(f"Qwen3 checkpoint: missing key {key}")
        return w.pop(key).float()

    def extended(table: Tensor) -> Tensor:
        out = torch.empty(config.vocab_size, table.shape[1])
        out[:n_text] = table[:n_text]
        out[n_text:] = sample_like(table[:n_text], config.vocab_size - n_text, generator).float()
        return out

    state = {"embeddings.weight": extended(take("model.embed_tokens.weight")), "norm.weight": take("model.norm.weight")}
    if config.tie_word_embeddings:
        w.pop("lm_head.weight", None)
    else:
        state["output.weight"] = extended(take("lm_head.weight"))
    for i in range(config.slow.n_layer):
        hf, ours = f"model.layers.{i}.", f"layers.{i}."
        for suffix in ("weight", "bias") if config.slow.attention_qkv_bias else ("weight",):
            q = rotate_half_to_interleaved(take(f"{hf}self_attn.q_proj.{suffix}"), hd)
            k = rotate_half_to_interleaved(take(f"{hf}self_attn.k_proj.{suffix}"), hd)
            state[f"{ours}attention.wqkv.{suffix}"] = torch.cat([q, k, take(f"{hf}self_attn.v_proj.{suffix}")])
        state[f"{ours}attention.wo.weight"] = take(f"{hf}self_attn.o_proj.weight")
        if config.slow.attention_o_bias:
            state[f"{ours}attention.wo.bias"] = take(f"{hf}self_attn.o_proj.bias")
        state[f"{ours}attention.q_norm.weight"] = rotate_half_to_interleaved(take(f"{hf}self_attn.q_norm.weight"), hd)
        state[f"{ours}attention.k_norm.weight"] = rotate_half_to_interleaved(take(f"{hf}self_attn.k_norm.weight"), hd)
        state[f"{ours}feed_forward.w1.weight"] = take(f"{hf}mlp.gate_proj.weight")
        state[f"{ours}feed_forward.w3.weight"] = take(f"{hf}mlp.up_proj.weight")
        state[f"{ours}feed_forward.w2.weight"] = take(f"{hf}mlp.down_proj.weight")
        state[f"{ours}attention_norm.weight"] = take(f"{hf}input_layernorm.weight")
        state[f"{ours}ffn_norm.weight"] = take(f"{hf}post_attention_layernorm.weight")
    if w:
        raise CheckpointFormatError(f"Qwen3 checkpoint: unexpected keys {', '.join(sorted(w)[:6])}")
    return state


def from_qwen3(
    source: str,
    *,
    num_codebooks: int = 10,
    codebook_size: int = SEMANTIC_TOKENS,
    fast_layers: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
):
    """(model, tokenizer) converted from a Qwen3 hub id or folder, with the S2 vocabulary; see the module doc."""
    # the trainer is the one command that starts from Qwen3, and it names the source model.path
    folder = Path(resolve_hf_checkpoint(source, "Qwen3 base model", "model.path", fallback=None))
    hf = json.loads((folder / "config.json").read_text())
    tokenizer = load_tokenizer(folder)
    n_text = len(tokenizer)
    if n_text > hf.get("vocab_size", 0):
        raise ConfigError(f"{folder}: the tokenizer has {n_text} tokens, more than vocab_size {hf.get('vocab_size')}")
    extend_tokenizer(tokenizer, codebook_size)
    ids = TokenIds.from_tokenizer(tokenizer, codebook_size)
    config = qwen3_config(
        hf,
        ids,
        padded_vocab_size(len(tokenizer)),
        num_codebooks=num_codebooks,
        fast_layers=fast_layers,
        source=str(folder / "config.json"),
    )
    state = _slow_state(_read_hf(folder), config, n_text, torch.Generator().manual_seed(seed))

    with torch.device("meta"):
        model = DualARTransformer(config)
    model.to_empty(device="cpu")
    result = model.load_state_dict(state, strict=False)
    model.init_weights(seed + 1, [m for name, m in model.named_children() if name.startswith(("codebook", "fast_"))])
    fresh = {k for k in result.missing_keys if not k.startswith(("codebook_embeddings.", "fast_"))}
    if fresh or result.unexpected_keys:
        raise CheckpointFormatError(
            f"{folder}: conversion left {sorted(fresh)} unset and {sorted(result.unexpected_keys)} unused"
        )
    return model.to(dtype).eval(), tokenizer
