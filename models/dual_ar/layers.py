"""The transformer block both ARs are made of, with the reference's conventions, so that released weights mean
the same thing here:

- RMSNorm computed in float32, cast back, then scaled by its weight;
- attention: one fused projection `wqkv` whose rows are [q (n_head·head_dim); k (kv·head_dim); v (kv·head_dim)],
  optional per-head RMSNorm of q and k (qk-norm) before RoPE, grouped-query attention, output projection `wo`;
- RoPE rotating interleaved pairs (2i, 2i+1) by position·base^(-2i/head_dim), the cos/sin table rounded to
  `rope_dtype` (bfloat16 in the reference) and applied in float32;
- SwiGLU feed-forward w2(silu(w1 x) · w3 x).

Linear layers keep the reference's names (wqkv, wo, w1, w2, w3): released checkpoints map onto them and PEFT
LoRA can target them by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.dual_ar.attention import KVCache
from models.dual_ar.config import StackConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_table(positions: Tensor, head_dim: int, base: float, dtype: torch.dtype) -> Tensor:
    """cos and sin of every position and pair: positions [B, T] -> [B, T, head_dim/2, 2], rounded to `dtype`."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    angles = positions.float()[..., None] * inv_freq
    # polar, as the reference computes it, so that the rounding to bfloat16 lands on the same values
    return torch.view_as_real(torch.polar(torch.ones_like(angles), angles)).to(dtype)


def apply_rope(x: Tensor, table: Tensor) -> Tensor:
    """Rotate the interleaved pairs of x [B, T, H, head_dim] by the table [B, T, head_dim/2, 2]."""
    pairs = x.float().unflatten(-1, (-1, 2))
    cos, sin = table[:, :, None, :, 0], table[:, :, None, :, 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1)
    return rotated.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, c: StackConfig, eps: float):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = c.n_head, c.n_local_heads, c.head_dim
        self.wqkv = nn.Linear(c.dim, (c.n_head + 2 * c.n_local_heads) * c.head_dim, bias=c.attention_qkv_bias)
        self.wo = nn.Linear(c.n_head * c.head_dim, c.dim, bias=c.attention_o_bias)
        if c.attention_qk_norm:
            self.q_norm = RMSNorm(c.head_dim, eps)
            self.k_norm = RMSNorm(c.head_dim, eps)
        self.qk_norm = c.attention_qk_norm

    def forward(self, x: Tensor, rope: Tensor, mask, cache: KVCache | None = None, start: int = 0) -> Tensor:
        B, T, _ = x.shape
        q_size, kv_size = self.n_head * self.head_dim, self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim)
        k = k.view(B, T, self.n_kv, self.head_dim)
        v = v.view(B, T, self.n_kv, self.head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.update(k, v, start)
        y = mask.attend(q, k, v)
        return self.wo(y.transpose(1, 2).reshape(B, T, q_size))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then + feed_forward(norm(·))."""

    def __init__(self, c: StackConfig, eps: float):
        super().__init__()
        self.attention = Attention(c, eps)
        self.feed_forward = FeedForward(c.dim, c.intermediate_size)
        self.attention_norm = RMSNorm(c.dim, eps)
        self.ffn_norm = RMSNorm(c.dim, eps)

    def forward(self, x: Tensor, rope: Tensor, mask, cache: KVCache | None = None, start: int = 0) -> Tensor:
        h = x + self.attention(self.attention_norm(x), rope, mask, cache, start)
        return h + self.feed_forward(self.ffn_norm(h))
