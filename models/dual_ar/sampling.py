"""Token sampling as the reference does it, with a random stream per batch item so that results are reproducible
and do not depend on what else is in the batch.

Filtering order: top-p on the softmax of the *untempered* logits (a token is dropped once the cumulative
probability before and including it exceeds top_p; the most likely token is always kept), then top-k, then
the temperature on what is left. Only the top-k candidates can survive, so the filter works on them alone
(`torch.topk`, no sort of the whole distribution) with the softmax's normaliser taken over all logits.

The draw is an exponential race, argmax(p / E) with E = -log U, U uniform, over the candidates. Two streams of U:

- `TorchNoise`: a torch.Generator per item drawing one uniform per entry of the full distribution (the whole
  vocabulary, or a codebook's codebook_size entries), of which the candidates' are read: the same variates as the
  reference's, so a generator seeded like the reference's global RNG draws the same tokens on CPU. It takes one
  call per item and draw.
- `CounterNoise`: U hashed (SplitMix64) from (item seed, draw number, entry), computed for the candidates only and
  for all items at once. A batch of any size costs a few tensor operations per draw, and an item's draws depend on
  its seed and the draw number alone, so it gets in a batch what it gets alone. Its variates are not the
  reference's: the same seed gives other tokens than TorchNoise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SamplingParams:
    """Defaults are the reference API's. RAS (repetition-aware sampling, the report's): when the sampled
    semantic token is among the last `ras_window` ones, take the second sample drawn at ras_temperature and
    ras_top_p instead."""

    temperature: float = 0.8
    top_p: float = 0.8
    top_k: int = 30
    ras_window: int = 10
    ras_temperature: float = 1.0
    ras_top_p: float = 0.9

    def __post_init__(self):
        if not 0 < self.top_p <= 1 or not 0 < self.ras_top_p <= 1:
            raise ValueError(f"top_p and ras_top_p must be in (0, 1], got {self.top_p} and {self.ras_top_p}")
        if self.temperature <= 0 or self.ras_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {self.temperature} and {self.ras_temperature}")
        if self.top_k < 1 or self.ras_window < 0:
            raise ValueError(f"top_k must be >= 1 and ras_window >= 0, got {self.top_k} and {self.ras_window}")


def candidates(logits: Tensor, temperature: float, top_p: float, top_k: int) -> tuple[Tensor, Tensor]:
    """(probs [B, k], columns [B, k]) of logits [B, V] after top-p, top-k and temperature: the probabilities of the
    top-k columns (zero where top-p drops one), k = min(top_k, V)."""
    logits = logits.float()
    ranked, columns = logits.topk(min(top_k, logits.shape[-1]), dim=-1)
    if top_p < 1:
        cumulative = (ranked - logits.logsumexp(-1, keepdim=True)).exp().cumsum(-1)
        drop = cumulative > top_p
        drop[:, 0] = False
    else:  # nothing to drop: a float cumulative sum can pass 1.0 by a rounding error, which would drop the last
        drop = torch.zeros_like(ranked, dtype=torch.bool)
    return (ranked.masked_fill(drop, float("-inf")) / max(temperature, 1e-5)).softmax(-1), columns


class TorchNoise:
    """The reference's stream: generators[b] draws `width` uniforms per draw, one per entry of the distribution."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def uniform(self, columns: Tensor, width: int) -> Tensor:
        full = torch.stack([torch.rand(width, generator=g, device=columns.device) for g in self.generators])
        return full.gather(-1, columns)


def _int64(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with its bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = _int64(0x9E3779B97F4A7C15), _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)


def _shift(x: Tensor, n: int) -> Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic)."""
    return (x >> n) & ((1 << (64 - n)) - 1)


def splitmix64(x: Tensor) -> Tensor:
    """SplitMix64's output function on int64 tensors (multiplication wraps modulo 2^64 as on unsigned)."""
    z = x + _GOLDEN
    z = (z ^ _shift(z, 30)) * _MIX1
    z = (z ^ _shift(z, 27)) * _MIX2
    return z ^ _shift(z, 31)


class CounterNoise:
    """U(0, 1) hashed from (seed of the item, number of the draw, column): no state but the draw counter, which
    every item of a batch advances together."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.keys = splitmix64(torch.tensor([int(s) for s in seeds], dtype=torch.long, device=device))
        self.draws = 0

    def uniform(self, columns: Tensor, width: int) -> Tensor:
        del width  # a hash needs no variate for the columns not asked for
        key = splitmix64(self.keys ^ self.draws)[:, None]
        self.draws += 1
        bits = _shift(splitmix64(key ^ columns), 11)  # 53 random bits
        return (bits.double() + 0.5) / float(1 << 53)


def draw(probs: Tensor, columns: Tensor, noise: TorchNoise | CounterNoise, width: int) -> Tensor:
    """One column per row of `candidates`' (probs, columns) [B, k], row b drawing from its stream of `noise` over a
    distribution of `width` entries: [B] long."""
    uniform = noise.uniform(columns, width)
    race = probs.to(uniform.dtype) / -uniform.log()
    return columns.gather(-1, race.argmax(-1, keepdim=True))[:, 0]


def repetition_aware(token: Tensor, fallback: Tensor, window: Tensor, semantic: Tensor) -> Tensor:
    """RAS: per row, `fallback` where `token` is a semantic token (semantic [B] bool) already in the row's window
    of recent tokens [B, W]; `token` otherwise."""
    repeated = semantic & (window == token[:, None]).any(-1)
    return torch.where(repeated, fallback, token)
