"""The Dual-AR training loss (the report, Eq. 2-4), as sums that the trainer divides by global counts.

    L_slow = mean over learned tokens of -log P(x_t | x_<t)                          (Eq. 2; m_t from the batch)
    L_fast = mean over learned frames of sum_k w_k (-log P(q_k | h, q_<k)) / sum_k w_k    (Eq. 3)
    L      = lambda_slow L_slow + lambda_fast L_fast                                  (Eq. 4)

Eq. 3 as printed divides by the weights of k = 1..N-1 while summing k = 0..N-1; we divide by the weights summed
over the codebooks that enter the loss, so that pretraining (w_k = 1 for all k) is the reference's plain mean
over all N codebooks (its lit_module). SFT drops k = 0 and weighs k >= 1 by decay^(k-1).

Every term is returned as a sum over one micro-batch: dividing by the token and frame counts of the whole global
batch (all micro-batches of all ranks) makes the loss, and so the gradient, independent of how the global batch
is split into micro-batches and ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from schemas.training import LossConfig

IGNORE = -100


def codebook_weights(config: LossConfig, num_codebooks: int) -> Tensor:
    """w_0..w_{N-1} of Eq. 3."""
    if config.codebook_weights is not None:
        if len(config.codebook_weights) != num_codebooks:
            raise ValueError(
                f"loss.codebook_weights has {len(config.codebook_weights)} weights; the model has {num_codebooks} codebooks"
            )
        return torch.tensor(config.codebook_weights, dtype=torch.float32)
    if config.mode == "pretrain":
        return torch.ones(num_codebooks)
    k = torch.arange(num_codebooks, dtype=torch.float32)
    return torch.where(k == 0, 0.0, config.sft_decay ** (k - 1))


@dataclass
class LossSums:
    """One micro-batch's sums. slow: CE summed over learned tokens; fast: per-frame weighted CE (Eq. 3's inner
    average) summed over frames; per_codebook [N]: CE of each codebook summed over frames (for the log)."""

    slow: Tensor
    fast: Tensor
    per_codebook: Tensor


def _chunk_ce(model, hidden: Tensor, targets: Tensor, weights: Tensor | None = None) -> Tensor:
    if weights is None:
        return F.cross_entropy(model.token_logits(hidden).float(), targets, reduction="sum")
    return (F.cross_entropy(model.token_logits(hidden).float(), targets, reduction="none") * weights).sum()


class DualARLoss(nn.Module):
    """The model and its loss as one module, so that the LM head's weight (the token embeddings, tied) is used
    inside a forward: under FSDP2 a parameter is whole only there. forward -> LossSums of one micro-batch."""

    def __init__(self, model: nn.Module, weights: Tensor, chunk_tokens: int):
        super().__init__()
        self.model = model
        self.register_buffer("weights", weights, persistent=False)
        self.chunk_tokens = chunk_tokens

    def forward(
        self, inputs: Tensor, labels: Tensor, segment_ids: Tensor, token_weights: Tensor | None = None
    ) -> LossSums:
        out = self.model(inputs, labels, segment_ids=segment_ids, token_logits=False)
        return loss_sums(self.model, out, labels, self.weights, self.chunk_tokens, token_weights)


def loss_sums(
    model, out, labels: Tensor, weights: Tensor, chunk_tokens: int, token_weights: Tensor | None = None
) -> LossSums:
    """Sums of a forward `out` (model(..., token_logits=False), labels masked by Eq. 2) over `labels` [B, N+1, T];
    `token_weights` [B, T]: lambda_t of Eq. 2 (None: 1 everywhere).

    The LM head runs on learned positions only, `chunk_tokens` at a time, each chunk recomputed in the backward
    pass: the [tokens, vocab] logits (vocab 155,776 for S2-Pro) never exist for a whole row."""
    learned = labels[:, 0] != IGNORE
    hidden, targets = out.hidden[learned], labels[:, 0][learned]
    lam = token_weights.to(hidden.device)[learned] if token_weights is not None else None
    slow = 0.0 * hidden.sum(dtype=torch.float32)  # keeps the graph whole when nothing is learned here
    for start in range(0, len(targets), chunk_tokens):
        h, y = hidden[start : start + chunk_tokens], targets[start : start + chunk_tokens]
        w = lam[start : start + chunk_tokens] if lam is not None else None
        if torch.is_grad_enabled():
            slow = slow + checkpoint(_chunk_ce, model, h, y, w, use_reentrant=False)
        else:
            slow = slow + _chunk_ce(model, h, y, w)
    logits, codes = out.codebook_logits, out.codebook_labels
    ce = F.cross_entropy(logits.float().flatten(0, 1), codes.flatten(), reduction="none").view(codes.shape)
    w = weights.to(ce.device)
    fast = (ce * w).sum() / w.sum()
    return LossSums(slow=slow, fast=fast, per_codebook=ce.detach().sum(0))


def combine(sums: LossSums, tokens: int | Tensor, frames: int | Tensor, config: LossConfig) -> Tensor:
    """Eq. 4 of micro-batch sums over the global batch's learned tokens and frames (each at least 1)."""
    return config.lambda_slow * sums.slow / max(int(tokens), 1) + config.lambda_fast * sums.fast / max(int(frames), 1)
