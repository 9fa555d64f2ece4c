"""Group-relative advantages (the report, Eq. 5; Dr.GRPO).

    A_i = R_i - mean_j R_j        over the rollouts of one prompt that were scored

No division by the group's standard deviation (Dr.GRPO): a group whose rewards barely differ would otherwise
have its small differences blown up to unit scale, the "difficulty bias" the report removes. A group whose
rollouts all score the same gets zero advantages and so no policy gradient (only the KL term acts on it).

A rollout left without a reward because a reward service failed past its retries (training.grpo.scoring) is
dropped from its group: the mean is over the others, and it takes no part in the loss. Scoring it 0 would let it
pull the group's mean down as if the policy had earned 0. (A rollout the reward judged unscoreable, e.g. no audio,
did earn the worst reward, and keeps it.) A group with fewer than 2 scored rollouts has no baseline and
contributes nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor


def taking_part(scored: Tensor) -> Tensor:
    """Which rollouts [P, G] take part in the loss: scored ones in groups with at least 2 scored."""
    return scored & (scored.sum(dim=1, keepdim=True) >= 2)


def group_advantages(rewards: Tensor, scored: Tensor | None = None) -> Tensor:
    """Advantages [P, G] of rewards [P, G] (P prompts, G rollouts each); `scored` [P, G] bool (default all): 0
    for every rollout that does not take part, whatever its reward."""
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [prompts, G >= 2], got {tuple(rewards.shape)}")
    scored = torch.ones_like(rewards, dtype=torch.bool) if scored is None else scored
    part = taking_part(scored)
    values = torch.where(part, rewards, torch.zeros_like(rewards))
    mean = values.sum(dim=1, keepdim=True) / part.sum(dim=1, keepdim=True).clamp(min=1)
    return torch.where(part, rewards - mean, torch.zeros_like(rewards))
