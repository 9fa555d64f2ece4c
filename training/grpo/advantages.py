"""Group-relative advantages (the report, Eq. 5; Dr.GRPO).

    A_i = R_i - mean_j R_j        over the G rollouts of one prompt

No division by the group's standard deviation (Dr.GRPO): a group whose rewards barely differ would otherwise
have its small differences blown up to unit scale, the "difficulty bias" the report removes. A group whose
rollouts all score the same gets zero advantages and so no policy gradient (only the KL term acts on it).
"""

from __future__ import annotations

from torch import Tensor


def group_advantages(rewards: Tensor) -> Tensor:
    """Advantages [P, G] of rewards [P, G] (P prompts, G rollouts each)."""
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [prompts, G >= 2], got {tuple(rewards.shape)}")
    return rewards - rewards.mean(dim=1, keepdim=True)
