"""The rewards a GRPO run weighs, each behind the reward protocol (models.rewards.base.Reward): the services'
stt, quality and similarity, in-process (built from the curation profile's wrappers) or through `s2 serve-rewards`
(models.rewards.client.RewardClient), and `duration`, the demo's learnable reward.

`duration` exists because the demo and the tests run tiny random models: the random codec's audio hardly depends
on the codes (about 1% of its power does), and the tiny policy's heads are frozen under LoRA, so the real rewards,
or a reward on the audio's spectrum, do not move reliably within a few dozen CPU steps. The audio's length does: the
policy controls it through <|im_end|>. `duration` scores the decoded audio's length against a target, through the
same protocol, per-item errors and loop as the real rewards; it measures nothing about speech.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from models.rewards import Wrappers, build_reward
from models.rewards.audio import AudioError, check
from models.rewards.base import Reward, RewardItem
from models.rewards.client import RewardClient
from schemas.grpo import DurationConfig, GRPORewardsConfig
from schemas.rewards import AudioLimits, RewardResult, RewardsConfig


class DurationReward:
    """min(1, duration / target_s) of audio that passes the rewards' audio checks."""

    name = "duration"

    def __init__(self, config: DurationConfig, limits: AudioLimits | None = None):
        self.config = config
        self.limits = limits or AudioLimits()
        self.metadata = {"reward": f"duration over {config.target_s:g} s, capped at 1"}

    def _one(self, item: RewardItem) -> RewardResult:
        try:
            seconds = check(item.audio, item.sample_rate, self.limits).size / item.sample_rate
        except AudioError as exc:
            return RewardResult.failed(f"audio: {exc}", metadata=self.metadata)
        score = min(1.0, seconds / self.config.target_s)
        return RewardResult(
            score=score, components={"duration": score, "duration.seconds": seconds}, metadata=self.metadata
        )

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]:
        return [self._one(item) for item in batch]


def build_rewards(config: GRPORewardsConfig, resolved: RewardsConfig | None = None) -> dict[str, Reward]:
    """Each reward weighted above 0, by name. `resolved`: the services' RewardsConfig with the profile's model specs
    (jobs.serve_rewards.rewards_config of config.service_layer()), needed for in-process stt, quality and
    similarity. Each in-process reward gets its own wrappers: the scorer runs them on threads of their own."""
    rewards: dict[str, Reward] = {}
    for name in config.active():
        if name == "duration":
            rewards[name] = DurationReward(config.duration, resolved.audio if resolved else None)
        elif config.url is not None:
            token = os.environ.get(config.token_env, "")
            if not token:
                raise ValueError(f"rewards.url is set but ${config.token_env} (rewards.token_env) is empty")
            rewards[name] = RewardClient(
                config.url,
                name,
                token=token,
                timeout_s=config.timeout_s,
                retries=config.retries,
                backoff_s=config.retry_backoff_s,
            )
        else:
            if resolved is None:
                raise ValueError(f"rewards.weights.{name}: in-process rewards need the profile's resolved models")
            rewards[name] = build_reward(name, resolved, Wrappers(resolved))
    return rewards
