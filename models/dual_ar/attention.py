"""Which keys each query may see, and the kernel that applies it.

Training runs over packed rows: several samples share a row, each marked by a segment id. A query sees the
keys of its own sample at or before it, never another sample's. Two interchangeable kernels:

- "sdpa": `scaled_dot_product_attention` with a block-diagonal causal bool mask [B, 1, T, T]. Works on any
  device; memory grows with T².
- "flex": `flex_attention` with a block mask built from the segment ids, for GPUs, where it skips the blocks
  that are masked whole (compile it there: `torch.compile` of the model or of `flex_attention`). Without
  compilation it runs an unfused reference implementation, which is what the CPU tests check it with.

Generation uses `CacheMask`: keys are the slots of a KV cache, with the left padding of a batch masked out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BACKENDS = ("sdpa", "flex")


def positions_from_segments(segment_ids: Tensor) -> Tensor:
    """Position of every token within its own sample: 0 at each sample's first token. [B, T] -> [B, T]."""
    T = segment_ids.shape[-1]
    index = torch.arange(T, device=segment_ids.device).expand_as(segment_ids)
    starts = torch.ones_like(segment_ids, dtype=torch.bool)
    starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
    first = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=-1).values
    return index - first


class CausalMask:
    """One sample per row: plain causal attention (the kernels' fast path)."""

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=q.shape[1] != k.shape[1])


class DenseMask:
    """An explicit bool mask [B, 1, Tq, Tk] (True = may attend)."""

    def __init__(self, allowed: Tensor):
        self.allowed = allowed

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.allowed, enable_gqa=q.shape[1] != k.shape[1])


class FlexMask:
    """A flex_attention block mask: causal within a segment."""

    def __init__(self, segment_ids: Tensor):
        from torch.nn.attention.flex_attention import create_block_mask

        def same_sample_causal(b, h, q_idx, kv_idx):
            return (segment_ids[b, q_idx] == segment_ids[b, kv_idx]) & (q_idx >= kv_idx)

        B, T = segment_ids.shape
        self.block_mask = create_block_mask(same_sample_causal, B, None, T, T, device=segment_ids.device)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        from torch.nn.attention.flex_attention import flex_attention

        return flex_attention(q, k, v, block_mask=self.block_mask, enable_gqa=q.shape[1] != k.shape[1])


def packed_mask(segment_ids: Tensor | None, backend: str = "sdpa") -> CausalMask | DenseMask | FlexMask:
    """The mask of a packed batch: causal within each sample (segment ids [B, T]); None = one sample per row."""
    if backend not in BACKENDS:
        raise ValueError(f"attention backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if segment_ids is None:
        return CausalMask()
    if backend == "flex":
        return FlexMask(segment_ids)
    T = segment_ids.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    return DenseMask((same & causal)[:, None])


class CacheMask(DenseMask):
    """Queries at cache slots start..start+Tq-1 over keys at slots 0..start+Tq-1 of a batch whose items start
    at different slots (left padding): a key is seen when it is valid and not later than the query. A padding
    query sees only itself, so that no row is masked whole (which would make NaNs)."""

    def __init__(self, valid: Tensor, start: int, q_len: int):
        end = start + q_len
        slots = torch.arange(end, device=valid.device)
        query_slots = slots[start:, None]
        allowed = valid[:, None, :end] & (slots[None, :] <= query_slots)[None]
        allowed |= (slots[None, :] == query_slots)[None]
        super().__init__(allowed[:, None])


class KVCache:
    """Keys and values of one attention layer, preallocated for `length` slots: [B, kv_heads, length, head_dim]."""

    def __init__(self, batch: int, kv_heads: int, length: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        self.k = torch.zeros(batch, kv_heads, length, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros_like(self.k)

    def update(self, k: Tensor, v: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """Write k, v [B, kv_heads, T, head_dim] at slots start..start+T-1; return slots 0..start+T-1."""
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]
