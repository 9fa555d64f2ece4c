"""The total reward: sum of weight x reward over the components whose weight is not 0 (`weights` in the config).
Every component's values are kept in the result for logging; an item any component cannot score gets the worst
total with each component's reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.rewards import audio
from models.rewards.base import Reward, RewardItem
from schemas.rewards import AudioLimits, RewardResult, RewardWeights


def check_items(batch: Sequence[RewardItem], limits: AudioLimits) -> tuple[list[int], dict[int, RewardResult]]:
    """Items whose generated audio can be scored, and a failed result for each other one: the audio is checked
    once for the total rather than once per component."""
    ok, failed = [], {}
    for i, item in enumerate(batch):
        try:
            audio.check(item.audio, item.sample_rate, limits)
            ok.append(i)
        except audio.AudioError as exc:
            failed[i] = RewardResult.failed(f"audio: {exc}")
    return ok, failed


def combine(results: Mapping[str, RewardResult], weights: RewardWeights) -> RewardResult:
    """One item's total from its component results."""
    components: dict[str, float] = {}
    metadata: dict[str, str] = {}
    for r in results.values():
        components |= r.components
        metadata |= r.metadata
    errors = [f"{name}: {r.error}" for name, r in results.items() if r.error is not None]
    if errors:
        return RewardResult.failed("; ".join(errors), components, metadata)
    return RewardResult(
        score=sum(weights.of(name) * r.score for name, r in results.items()), components=components, metadata=metadata
    )


class TotalReward:
    name = "total"

    def __init__(self, components: Mapping[str, Reward], weights: RewardWeights, limits: AudioLimits):
        self.components, self.weights, self.limits = dict(components), weights, limits

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]:
        ok, results = check_items(batch, self.limits)
        live = [batch[i] for i in ok]
        scored = {name: reward.score(live) for name, reward in self.components.items()}
        for k, i in enumerate(ok):
            results[i] = combine({name: rs[k] for name, rs in scored.items()}, self.weights)
        return [results[i] for i in range(len(batch))]
