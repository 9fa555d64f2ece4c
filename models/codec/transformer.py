"""The codec's causal sliding-window transformer: position i attends to positions j with i - window < j <= i.

Attention runs in query chunks of `window` positions, each against the keys its window can reach (at most
2 * window - 1 of them) with a band mask of that size: memory grows with the window, never with the square of the
sequence. Chunks start at fixed positions (0, window, 2 * window, ...), so a frame sees the same keys whether its
sequence ends soon after it or is padded on to the length of a longer batch item.
Layer layout and names follow the released checkpoint (`layers.N.attention.wqkv`, ...; channels first outside).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalised in float32 whatever the compute dtype, as trained
        xf = x.float()
        return (xf * torch.rsqrt((xf * xf).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 1e-2):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


@functools.lru_cache(maxsize=16)
def _rope_table(positions: int, head_dim: int, base: float) -> torch.Tensor:
    """[positions, head_dim / 2, (cos, sin)], rounded to bfloat16 as the released model was trained with. Computed
    on the CPU with torch.polar for every device, so that each entry is the same value the reference computes."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(positions), inv_freq)
    rotation = torch.polar(torch.ones_like(angles), angles)
    return torch.stack([rotation.real, rotation.imag], dim=-1).to(torch.bfloat16)


def rope_table(length: int, head_dim: int, base: float, device: torch.device) -> torch.Tensor:
    # a power-of-two table serves every shorter length: few cached tables for many input lengths
    table = _rope_table(max(1024, 1 << (length - 1).bit_length()), head_dim, base)
    return table[:length].to(device=device, dtype=torch.float32)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (2i, 2i + 1) of x [B, T, H, D] by the table [T, D / 2, 2], in float32."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = table[None, :, None, :, 0], table[None, :, None, :, 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    return torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).flatten(3).type_as(x)


def windowed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Causal attention limited to the last `window` positions; q, k, v [B, H, T, D]."""
    length = q.shape[2]
    if length <= window:  # the window reaches back to the start from every position: plain causal attention
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    chunks = []
    for start in range(0, length, window):
        stop = min(start + window, length)
        first = max(0, start - window + 1)
        offset = (
            torch.arange(start, stop, device=q.device)[:, None] - torch.arange(first, stop, device=q.device)[None, :]
        )
        band = (offset >= 0) & (offset < window)
        chunks.append(
            F.scaled_dot_product_attention(
                q[:, :, start:stop], k[:, :, first:stop], v[:, :, first:stop], attn_mask=band
            )
        )
    return torch.cat(chunks, dim=2)


class Attention(nn.Module):
    def __init__(self, dim: int, n_head: int, head_dim: int, window: int):
        super().__init__()
        self.wqkv = nn.Linear(dim, 3 * n_head * head_dim, bias=False)
        self.wo = nn.Linear(n_head * head_dim, dim, bias=False)
        self.n_head, self.head_dim, self.window = n_head, head_dim, window

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = (
            t.view(batch, length, self.n_head, self.head_dim)
            for t in self.wqkv(x).split(self.n_head * self.head_dim, dim=-1)
        )
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        y = windowed_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), self.window)
        return self.wo(y.transpose(1, 2).reshape(batch, length, self.n_head * self.head_dim))


class FeedForward(nn.Module):
    """SwiGLU."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm attention and feed-forward, each scaled per channel before its residual add."""

    def __init__(self, dim: int, n_head: int, head_dim: int, hidden: int, window: int, eps: float):
        super().__init__()
        self.attention = Attention(dim, n_head, head_dim, window)
        self.feed_forward = FeedForward(dim, hidden)
        self.ffn_norm = RMSNorm(dim, eps)
        self.attention_norm = RMSNorm(dim, eps)
        self.attention_layer_scale = LayerScale(dim)
        self.ffn_layer_scale = LayerScale(dim)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        h = x + self.attention_layer_scale(self.attention(self.attention_norm(x), rope))
        return h + self.ffn_layer_scale(self.feed_forward(self.ffn_norm(h)))


class WindowedTransformer(nn.Module):
    """[B, C, T] -> [B, C, T]; RoPE positions count from the first frame."""

    def __init__(
        self, dim: int, n_layer: int, n_head: int, head_dim: int, hidden: int, window: int, eps: float, rope_base: float
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerBlock(dim, n_head, head_dim, hidden, window, eps) for _ in range(n_layer)
        )
        self.norm = RMSNorm(dim, eps)
        self.head_dim, self.rope_base = head_dim, rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        rope = rope_table(x.shape[1], self.head_dim, self.rope_base, x.device)
        for layer in self.layers:
            x = layer(x, rope)
        return self.norm(x).transpose(1, 2)
