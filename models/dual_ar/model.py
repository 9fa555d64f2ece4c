"""The Dual-AR transformer: a slow AR over the interleaved text + audio sequence and a fast AR over codebook depth.

Input rows [B, N+1, T]: row 0 holds token ids (text, control and semantic tokens), rows 1..N the codes of
codebooks 0..N-1 at audio positions (anything at text positions; it is ignored). At an audio position the slow
AR's input is the multi-codebook fusion of Eq. 1, e_LM(semantic token) + Σ_i E(code_i + i·codebook_size), times
`config.embedding_scale` (1/sqrt(N+1) for released checkpoints; see models/dual_ar/__init__.py).

The fast AR sees, per audio frame, [project(h), emb(c_0), ..., emb(c_{N-2})] at depth positions 0..N-1 (RoPE over
depth) and predicts c_0..c_{N-1}, h being the slow hidden state after the final norm at the position *before*
the frame, i.e. where the frame's semantic token is the label. c_0 is the auxiliary target of training; at
inference it comes from the slow AR.

Training: `forward(inputs, labels, segment_ids=..., position_ids=...)` over packed rows. Generation uses the
cache-aware steps `slow_step` and `fast_step` (driven by models.dual_ar.generate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.dual_ar.attention import BACKENDS, CacheMask, KVCache, packed_mask, positions_from_segments
from models.dual_ar.config import DualARConfig
from models.dual_ar.layers import RMSNorm, TransformerBlock, rope_table


@dataclass
class DualAROutput:
    """What one training forward returns.

    hidden: [B, T, dim] slow hidden states after the final norm (the input of the LM head).
    token_logits: [B, T, vocab] or None when asked not to materialise them (compute a chunked loss from
        `hidden` with `model.token_logits(hidden_chunk)` instead).
    audio_mask: [B, T] positions whose label (row 0) is a semantic token: the frames the fast AR predicts.
    codebook_logits: [M, N, codebook_size], one row per True of audio_mask in row-major order.
    codebook_labels: [M, N] the codes those rows are trained to predict (labels rows 1..N at those positions).
    """

    hidden: Tensor
    token_logits: Tensor | None
    audio_mask: Tensor | None = None
    codebook_logits: Tensor | None = None
    codebook_labels: Tensor | None = None


class MathCausalMask:
    """Causal attention written out for the fast AR's short sequences: its training batch (every audio frame of
    the batch) is too large for the grid of the GPU SDPA kernels."""

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        groups = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        T = q.shape[2]
        future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
        return scores.masked_fill(future, float("-inf")).softmax(-1) @ v


class DualARTransformer(nn.Module):
    """Parameter names are those of the reference's state dict (see models.dual_ar.checkpoint for the released
    file's prefixes). `attention`: "sdpa" or "flex" for packed training (models.dual_ar.attention);
    `activation_checkpointing`: recompute each block in the backward pass (training only)."""

    def __init__(self, config: DualARConfig, *, attention: str = "sdpa", activation_checkpointing: bool = False):
        super().__init__()
        if attention not in BACKENDS:
            raise ValueError(f"attention backend {attention!r} is not one of {', '.join(BACKENDS)}")
        c = self.config = config
        self.attention = attention
        self.activation_checkpointing = activation_checkpointing
        self.embeddings = nn.Embedding(c.vocab_size, c.slow.dim)
        self.codebook_embeddings = nn.Embedding(c.codebook_size * c.num_codebooks, c.slow.dim)
        self.layers = nn.ModuleList(TransformerBlock(c.slow, c.norm_eps) for _ in range(c.slow.n_layer))
        self.norm = RMSNorm(c.slow.dim, c.norm_eps)
        if not c.tie_word_embeddings:
            self.output = nn.Linear(c.slow.dim, c.vocab_size, bias=False)
        self.fast_project_in = nn.Identity() if c.fast.dim == c.slow.dim else nn.Linear(c.slow.dim, c.fast.dim)
        self.fast_embeddings = nn.Embedding(c.codebook_size, c.fast.dim)
        self.fast_layers = nn.ModuleList(TransformerBlock(c.fast, c.norm_eps) for _ in range(c.fast.n_layer))
        self.fast_norm = RMSNorm(c.fast.dim, c.norm_eps)
        self.fast_output = nn.Linear(c.fast.dim, c.codebook_size, bias=False)

    @torch.no_grad()
    def init_weights(self, seed: int, modules: list[nn.Module] | None = None) -> None:
        """The reference's initialisation (Linear and Embedding weights ~ N(0, initializer_range), biases 0,
        norms 1), drawn from a generator seeded with `seed`, over `modules` (default: the whole model)."""
        generator = torch.Generator().manual_seed(seed)
        std = self.config.initializer_range
        for top in modules or [self]:
            for m in top.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
                    if getattr(m, "bias", None) is not None:
                        m.bias.zero_()
                elif isinstance(m, RMSNorm):
                    m.weight.fill_(1.0)

    # --- pieces ---------------------------------------------------------------------------------------------

    def is_semantic(self, tokens: Tensor) -> Tensor:
        return (tokens >= self.config.semantic_begin_id) & (tokens <= self.config.semantic_end_id)

    def embed(self, inputs: Tensor) -> Tensor:
        """Slow-AR input vectors of rows [B, N+1, T] -> [B, T, dim] (Eq. 1 at semantic positions, scaled)."""
        c = self.config
        tokens = inputs[:, 0]
        x = self.embeddings(tokens)
        semantic = self.is_semantic(tokens)
        codes = torch.where(semantic[:, None], inputs[:, 1 : c.num_codebooks + 1], 0)
        fused = x
        for i in range(c.num_codebooks):
            fused = fused + self.codebook_embeddings(codes[:, i] + i * c.codebook_size)
        return torch.where(semantic[..., None], fused * c.embedding_scale, x)

    @property
    def lm_head_weight(self) -> Tensor:
        return self.embeddings.weight if self.config.tie_word_embeddings else self.output.weight

    def token_logits(self, hidden: Tensor) -> Tensor:
        """Slow-AR logits of normed hidden states [..., dim] -> [..., vocab]; call it on chunks of `hidden`
        to compute a cross-entropy without holding [B, T, vocab] at once."""
        return F.linear(hidden, self.lm_head_weight)

    def _block(self, block: nn.Module, x: Tensor, rope: Tensor, mask) -> Tensor:
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, rope, mask, use_reentrant=False)
        return block(x, rope, mask)

    def _rope(self, positions: Tensor, head_dim: int) -> Tensor:
        return rope_table(positions, head_dim, self.config.rope_base, getattr(torch, self.config.rope_dtype))

    # --- training -------------------------------------------------------------------------------------------

    def forward_slow(
        self, inputs: Tensor, segment_ids: Tensor | None = None, position_ids: Tensor | None = None
    ) -> Tensor:
        """Normed slow hidden states [B, T, dim] of packed rows: attention stays within each segment (segment_ids
        [B, T]; padding is a segment of its own), positions restart per segment unless position_ids are given."""
        B, _, T = inputs.shape
        if position_ids is None:
            if segment_ids is None:
                position_ids = torch.arange(T, device=inputs.device).expand(B, T)
            else:
                position_ids = positions_from_segments(segment_ids)
        rope = self._rope(position_ids, self.config.slow.head_dim)
        mask = packed_mask(segment_ids, self.attention)
        x = self.embed(inputs)
        for block in self.layers:
            x = self._block(block, x, rope, mask)
        return self.norm(x)

    def forward_fast(self, hidden: Tensor, codes: Tensor) -> Tensor:
        """Teacher-forced fast AR: normed slow hidden states [M, dim] and the frames' codes [M, N] ->
        logits [M, N, codebook_size], row k predicting codebook k."""
        N = self.config.num_codebooks
        x = torch.cat([self.fast_project_in(hidden)[:, None], self.fast_embeddings(codes[:, : N - 1])], dim=1)
        rope = self._rope(torch.arange(N, device=x.device)[None], self.config.fast.head_dim)
        mask = MathCausalMask()
        for block in self.fast_layers:
            x = self._block(block, x, rope, mask)
        return self.fast_output(self.fast_norm(x))

    def forward(
        self,
        inputs: Tensor,
        labels: Tensor | None = None,
        *,
        segment_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        token_logits: bool = True,
    ) -> DualAROutput:
        """inputs, labels [B, N+1, T] (labels: inputs shifted by one, -100 where nothing is learned in row 0);
        segment_ids / position_ids [B, T] for packed rows. The fast AR runs on every position whose label is a
        semantic token, with labels rows 1..N there as its targets (and, shifted, its inputs)."""
        hidden = self.forward_slow(inputs, segment_ids, position_ids)
        out = DualAROutput(hidden=hidden, token_logits=self.token_logits(hidden) if token_logits else None)
        if labels is not None:
            out.audio_mask = self.is_semantic(labels[:, 0])
            out.codebook_labels = labels[:, 1 : self.config.num_codebooks + 1].transpose(1, 2)[out.audio_mask]
            out.codebook_logits = self.forward_fast(hidden[out.audio_mask], out.codebook_labels)
        return out

    # --- generation -----------------------------------------------------------------------------------------

    def new_caches(self, batch: int, length: int, fast: bool = False) -> list[KVCache]:
        """Empty KV caches of the slow (or fast) layers for `length` slots."""
        stack, layers = (self.config.fast, self.fast_layers) if fast else (self.config.slow, self.layers)
        weight = self.fast_output.weight
        return [
            KVCache(batch, stack.n_local_heads, length, stack.head_dim, weight.dtype, weight.device) for _ in layers
        ]

    def slow_step(self, inputs: Tensor, positions: Tensor, mask, caches: list[KVCache], start: int) -> Tensor:
        """Rows [B, N+1, T] at cache slots start..start+T-1 (token positions [B, T]) -> normed hidden [B, T, dim]."""
        rope = self._rope(positions, self.config.slow.head_dim)
        x = self.embed(inputs)
        for block, cache in zip(self.layers, caches):
            x = block(x, rope, mask, cache, start)
        return self.norm(x)

    def fast_step(self, x: Tensor, start: int, caches: list[KVCache]) -> Tensor:
        """Fast-AR inputs [B, T, fast_dim] at depth positions start..start+T-1 -> logits [B, T, codebook_size]."""
        T = x.shape[1]
        rope = self._rope(torch.arange(start, start + T, device=x.device)[None], self.config.fast.head_dim)
        mask = CacheMask(torch.ones(x.shape[0], start + T, dtype=torch.bool, device=x.device), start, T)
        for block, cache in zip(self.fast_layers, caches):
            x = block(x, rope, mask, cache, start)
        return self.fast_output(self.fast_norm(x))
