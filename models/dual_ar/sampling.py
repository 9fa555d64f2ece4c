"""Token sampling as the reference does it, with a generator per batch item so that results are reproducible
and do not depend on what else is in the batch.

Filtering order: top-p on the softmax of the *untempered* logits (a token is dropped once the cumulative
probability before and including it exceeds top_p; the most likely token is always kept), then top-k, then
the temperature on what is left. The draw is an exponential race, argmax(p / E) with E = -log U, U uniform:
the same variates as the reference's, so a generator seeded like the reference's global RNG draws the same
tokens on CPU.
"""

from __future__ import annotations

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


def filtered_probs(logits: Tensor, temperature: float, top_p: float, top_k: int) -> Tensor:
    """Sampling distribution [B, V] (float32) of logits [B, V] after top-p, top-k and temperature."""
    logits = logits.float()
    ranked, order = logits.sort(dim=-1, descending=True)
    cumulative = ranked.softmax(-1).cumsum(-1)
    rank = torch.arange(logits.shape[-1], device=logits.device)
    drop = (cumulative > top_p) | (rank >= top_k)
    drop[:, 0] = False
    drop = drop.scatter(-1, order, drop)
    return (logits.masked_fill(drop, float("-inf")) / max(temperature, 1e-5)).softmax(-1)


def draw(probs: Tensor, generators: list[torch.Generator]) -> Tensor:
    """One token per row of probs [B, V], row b drawing from generators[b]: [B] long."""
    V = probs.shape[-1]
    uniform = torch.stack([torch.rand(V, generator=g, device=probs.device) for g in generators])
    return (probs / -uniform.log()).argmax(-1)


def repetition_aware(token: Tensor, fallback: Tensor, window: Tensor, semantic: Tensor) -> Tensor:
    """RAS: per row, `fallback` where `token` is a semantic token (semantic [B] bool) already in the row's window
    of recent tokens [B, W]; `token` otherwise."""
    repeated = semantic & (window == token[:, None]).any(-1)
    return torch.where(repeated, fallback, token)
