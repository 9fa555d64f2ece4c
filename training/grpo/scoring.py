"""Asynchronous, decoupled scoring (the report, Section 4.3): the policy submits a group's rollouts and goes on
generating the next group while the group is decoded and scored.

    submit(rollouts) -> Future[GroupScores]

Three stages, each on threads of its own, so consecutive groups flow through them like a pipeline: the decoder
turns codes into audio through the waveform cache (one decode per rollout, whatever the number of rewards); one
worker per reward scores the group's items (each reward is called from its one thread only, so a model wrapper is
never shared between threads); the combiner waits for every reward of the group and weighs them into R_i. A
reward is anything with the reward protocol: an in-process reward, a RewardClient in front of the services, or
(under Ray, pipelines/grpo.py) a proxy of a reward actor. Decoding and the model rewards release the GIL, so
on one machine they run beside generation; on a cluster they run where the rewards live.

Two kinds of failure. An item a reward judges unscoreable (no audio, silent, too long) is the policy's doing: it
gets the worst reward with the reason, as the services' total gives it, and takes part in its group. A reward
service that still fails after the client's retries (models.rewards.client.RewardServiceError, transient: a
timeout, no connection, a 5xx) says nothing about the policy: the group's items are `unscored`, with the reason,
and the loop drops them from their groups and counts them (training.grpo.advantages). A refusal (401, 413, ...) or
any other exception of a reward is a broken setup or reward and ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from models.rewards.base import Reward, RewardItem
from models.rewards.client import RewardServiceError
from schemas.rewards import RewardResult
from training.grpo.rollout import Rollout, WaveformCache

NO_AUDIO = "no audio: the rollout ended before its first frame"


@dataclass
class GroupScores:
    """One group's combined rewards, in rollout order, and when its scoring ran (time.perf_counter seconds): from the
    start of its decoding to the end of its last reward. `unscored`: the rollouts a failed reward service left
    without a reward. `decoded`: its rollouts the codec decoded (not cached)."""

    results: list[RewardResult]
    unscored: list[bool]
    started: float
    finished: float
    decoded: int


def combine(results: Mapping[str, RewardResult], weights: Mapping[str, float]) -> RewardResult:
    """One rollout's R_i = sum of weight x score, every reward's score and components kept for the log; a rollout
    any reward failed to score gets the worst reward with each reason (as the services' total does)."""
    components: dict[str, float] = {}
    metadata: dict[str, str] = {}
    for name, r in results.items():
        components |= {name: r.score, **r.components}
        metadata |= r.metadata
    errors = [f"{name}: {r.error}" for name, r in results.items() if r.error is not None]
    if errors:
        return RewardResult.failed("; ".join(errors), components, metadata)
    return RewardResult(
        score=sum(weights[name] * r.score for name, r in results.items()), components=components, metadata=metadata
    )


@dataclass
class _Decoded:
    items: list[RewardItem]
    live: list[int]  # the rollouts with audio, in the order of `items`
    started: float
    decoded: int


class Scorer:
    def __init__(self, rewards: Mapping[str, Reward], weights: Mapping[str, float], cache: WaveformCache):
        if set(rewards) != set(weights):
            raise ValueError(f"rewards {sorted(rewards)} and weights {sorted(weights)} name different rewards")
        self.rewards, self.weights, self.cache = dict(rewards), dict(weights), cache
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="grpo-decode")
        self._workers = {name: ThreadPoolExecutor(1, thread_name_prefix=f"grpo-{name}") for name in self.rewards}
        self._combiner = ThreadPoolExecutor(1, thread_name_prefix="grpo-combine")

    def submit(self, rollouts: Sequence[Rollout]) -> Future[GroupScores]:
        rollouts = list(rollouts)
        decoded = self._decoder.submit(self._decode, rollouts)
        scored = {name: self._workers[name].submit(self._score, r, decoded) for name, r in self.rewards.items()}
        return self._combiner.submit(self._combine, rollouts, decoded, scored)

    def _decode(self, rollouts: list[Rollout]) -> _Decoded:
        started = time.perf_counter()
        live = [i for i, r in enumerate(rollouts) if r.frames > 0]
        prompts = {id(r.prompt): r.prompt for r in rollouts}.values()
        from_codes = [p for p in prompts if p.reference_audio is None and p.reference_codes is not None]
        before = self.cache.decoded
        waves = self.cache.get([rollouts[i].codes for i in live] + [p.reference_codes for p in from_codes])
        voices: dict[int, tuple[np.ndarray, int]] = {
            id(p): (w, self.cache.sample_rate) for p, w in zip(from_codes, waves[len(live) :])
        }
        voices |= {id(p): (p.reference_audio, p.reference_rate) for p in prompts if p.reference_audio is not None}
        items = []
        for i, wave in zip(live, waves):
            prompt = rollouts[i].prompt
            reference, rate = voices.get(id(prompt), (None, None))
            items.append(RewardItem(wave, self.cache.sample_rate, prompt.text, reference, rate))
        return _Decoded(items, live, started, self.cache.decoded - before)

    @staticmethod
    def _score(reward: Reward, decoded: Future[_Decoded]) -> tuple[list[RewardResult], bool, float]:
        """(results, whether the service failed, when it finished)."""
        items = decoded.result().items
        try:
            return reward.score(items), False, time.perf_counter()
        except RewardServiceError as exc:
            if not exc.transient:  # refused (a bad token, a request too large): no retry or later step would pass
                raise
            return [RewardResult.failed(str(exc))] * len(items), True, time.perf_counter()

    def _combine(self, rollouts: list[Rollout], decoded: Future[_Decoded], scored: dict[str, Future]) -> GroupScores:
        d = decoded.result()
        per_reward = {name: f.result() for name, f in scored.items()}
        results = [RewardResult.failed(NO_AUDIO)] * len(rollouts)
        unscored = [False] * len(rollouts)
        service_failed = any(failed for _, failed, _ in per_reward.values())
        for k, i in enumerate(d.live):
            results[i] = combine({name: rs[k] for name, (rs, _, _) in per_reward.items()}, self.weights)
            unscored[i] = service_failed
        finished = max(end for _, _, end in per_reward.values())
        return GroupScores(results, unscored, d.started, finished, d.decoded)

    def close(self) -> None:
        for pool in (self._decoder, *self._workers.values(), self._combiner):
            pool.shutdown(wait=True)
        for reward in self.rewards.values():
            close = getattr(reward, "close", None)
            if close is not None:
                close()
