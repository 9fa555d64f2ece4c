"""The GRPO policy loss of the Dual-AR model (the report, Eq. 6-8), with the k3 KL to the reference policy.

For rollout i with advantage A_i, S_i slow tokens, F_i frames and K = N - 1 acoustic codebooks:

    L_slow,i = 1/Z_slow,i  sum_t       [ -A_i log pi(x_t | x_<t)                + beta KL_t   ]      (Eq. 6)
    L_fast,i = 1/Z_fast,i  sum_t,k>=1  [ -A_i log pi_FA(q_t^k | h_t, q_t^<k)   + beta KL_t,k ]      (Eq. 7)
    L        = mean_i ( L_slow,i + gamma L_fast,i )                                                 (Eq. 8)

The normalisers (loss.length_norm). Eq. 6-7 leave open what a rollout's token sum is divided by: Eq. 6 prints a
mean over t without saying over how many, Eq. 7 divides by C^(k), "the k-th codebook size". The report follows
Dr.GRPO, and Dr.GRPO's point is that dividing each rollout by its own length is a bias:

- `constant` (the default, Dr.GRPO): Z_slow = max_new_tokens and Z_fast = max_new_tokens x K for every rollout, so
  every sampled token carries the same weight whatever the length of its rollout. With a negative advantage a long,
  looping bad rollout is pushed down per token as hard as a short one.
- `sequence`: Z_slow = S_i and Z_fast = F_i x K, each rollout's own token count (a per-token mean per rollout, as
  GRPO first did), kept for comparison: a 20-token rollout then gets a tenth of the per-token gradient of a 2-token
  one, so the long rollouts a bad policy loops in are punished least.

Both read Eq. 7's C^(k) as a count of the tokens summed, not as a codebook's size: a per-codebook constant (4,096,
1,024) would only rescale gamma.

The tokens. The slow AR's are the tokens it sampled: every frame's semantic token, and the final <|im_end|> when
the rollout ended with one (a rollout cut at max_new_tokens has none). The fast AR's are the acoustic codes
c_1..c_{N-1} of every frame, which it samples; c_0 is the slow AR's semantic token (in Eq. 6), the fast AR's
prediction of it only pretraining's auxiliary target.

The distribution pi. What the sampler draws from before it truncates: the logits at the sampling temperature over
the tokens it may draw (the slow AR: the semantic tokens the codec decodes and <|im_end|>; codebook k: its codec
size). Top-p, top-k and RAS shape exploration and are left out of pi, as TRL leaves them out.

The KL. Eq. 6 prints beta D_KL^(t) after the sum with t free; we put it per token inside the mean, as GRPO does:
k3 = pi_ref/pi - log(pi_ref/pi) - 1 at each sampled token (Schulman's estimator: non-negative, unbiased for
KL(pi || pi_ref)), with gradients through pi only.

The policy term is the printed -A log pi: every rollout serves one update right after it is drawn, so PPO-style
GRPO's ratio pi/pi_old is 1 and its gradient, A grad log pi, the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from models.dual_ar.prompt import IGNORE


@dataclass
class TokenLogProbs:
    """log pi of the sampled tokens of a batch of rollouts, and the rollout (batch row) of each."""

    slow: Tensor  # [S]
    slow_rollout: Tensor  # [S] long
    fast: Tensor  # [F, N-1]: codebooks 1..N-1 of each frame
    fast_rollout: Tensor  # [F] long


def sampled_logprobs(
    model, inputs: Tensor, labels: Tensor, *, codebook_sizes: Sequence[int], im_end_id: int, temperature: float
) -> TokenLogProbs:
    """log pi of the tokens the rollouts sampled: inputs, labels [B, N+1, T] as EncodedPrompt.training_pair gives
    them (right-padded with IGNORE labels). Only the allowed rows of the LM head are computed: the [T, vocab]
    logits of a 155,776-token vocabulary never exist."""
    c = model.config
    out = model(inputs, labels, token_logits=False)
    learned = labels[:, 0] != IGNORE
    targets = labels[:, 0][learned]
    begin, semantic = c.semantic_begin_id, codebook_sizes[0]
    head = model.lm_head_weight
    allowed = torch.cat([head[begin : begin + semantic], head[im_end_id : im_end_id + 1]])
    logits = F.linear(out.hidden[learned], allowed).float() / temperature
    index = torch.where(targets == im_end_id, semantic, targets - begin)
    slow = logits.log_softmax(-1).gather(-1, index[:, None])[:, 0]

    sizes = torch.tensor(list(codebook_sizes[1:]), device=inputs.device)
    invalid = torch.arange(c.codebook_size, device=inputs.device) >= sizes[:, None]  # [N-1, codebook_size]
    fast_logits = out.codebook_logits[:, 1:].float().masked_fill(invalid, float("-inf")) / temperature
    fast = fast_logits.log_softmax(-1).gather(-1, out.codebook_labels[:, 1:, None])[..., 0]
    return TokenLogProbs(
        slow=slow,
        slow_rollout=learned.nonzero()[:, 0],
        fast=fast,
        fast_rollout=out.audio_mask.nonzero()[:, 0],
    )


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Schulman's k3 estimate of KL(pi || pi_ref) at tokens drawn from pi, per token: r - log r - 1, r = pi_ref/pi."""
    log_ratio = ref_logp - logp
    return log_ratio.exp() - log_ratio - 1


def _sum_by(values: Tensor, rows: Tensor, n: int) -> Tensor:
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, rows, values)


@dataclass
class LossParts:
    """loss: sum_i kept_i (L_slow,i + gamma L_fast,i) / normaliser, the one to call backward on; the rest per
    rollout, detached: L_slow,i, L_fast,i and the mean k3 over its slow and fast tokens."""

    loss: Tensor
    slow: Tensor
    fast: Tensor
    kl_slow: Tensor
    kl_fast: Tensor


def grpo_loss(
    policy: TokenLogProbs,
    reference: TokenLogProbs,
    advantages: Tensor,
    *,
    beta: float,
    gamma: float,
    normaliser: int,
    length_norm: Literal["constant", "sequence"],
    max_new_tokens: int,
    kept: Tensor | None = None,
) -> LossParts:
    """Eq. 6-8 over a batch of rollouts (advantages [B]). `reference` holds log pi_ref of the same tokens (the same
    batch through the model with its adapters disabled). `normaliser` is the number of rollouts of the whole step,
    so that micro-batches add up to the mean over the step. `length_norm` and `max_new_tokens`: the per-rollout
    normalisers (module docstring). `kept` [B] bool: the rollouts that take part (default all); a dropped one
    (its reward failed) adds nothing to the loss, neither its policy term nor its KL."""
    if policy.slow.shape != reference.slow.shape or policy.fast.shape != reference.fast.shape:
        raise ValueError("policy and reference log-probs must cover the same tokens")
    B, K = len(advantages), policy.fast.shape[1]
    A = advantages.to(policy.slow)
    kl_slow, kl_fast = k3_kl(policy.slow, reference.slow), k3_kl(policy.fast, reference.fast)
    slow_tokens = _sum_by(torch.ones_like(policy.slow), policy.slow_rollout, B).clamp(min=1)
    fast_tokens = _sum_by(torch.full_like(policy.fast[:, 0], K), policy.fast_rollout, B).clamp(min=1)
    if length_norm == "constant":
        slow_norm, fast_norm = (
            torch.full_like(slow_tokens, max_new_tokens),
            torch.full_like(fast_tokens, max_new_tokens * K),
        )
    elif length_norm == "sequence":
        slow_norm, fast_norm = slow_tokens, fast_tokens
    else:
        raise ValueError(f"length_norm must be 'constant' or 'sequence', got {length_norm!r}")

    slow_terms = -A[policy.slow_rollout] * policy.slow + beta * kl_slow
    fast_terms = -A[policy.fast_rollout, None] * policy.fast + beta * kl_fast
    slow = _sum_by(slow_terms, policy.slow_rollout, B) / slow_norm
    fast = _sum_by(fast_terms.sum(-1), policy.fast_rollout, B) / fast_norm
    per_rollout = slow + gamma * fast
    if kept is not None:
        per_rollout = torch.where(kept.to(per_rollout.device), per_rollout, torch.zeros_like(per_rollout))
    return LossParts(
        loss=per_rollout.sum() / normaliser,
        slow=slow.detach(),
        fast=fast.detach(),
        kl_slow=(_sum_by(kl_slow, policy.slow_rollout, B) / slow_tokens).detach(),
        kl_fast=(_sum_by(kl_fast.sum(-1), policy.fast_rollout, B) / fast_tokens).detach(),
    )
