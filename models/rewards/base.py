"""The reward protocol: `score(batch) -> list[RewardResult]`, one result per item, in order, never raising for an
item. In-process rewards (built from the curation wrappers) and the HTTP client of the reward services both follow
it, so an RL loop takes either."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from models.rewards import audio
from schemas.rewards import AudioLimits, Range, RewardResult
from schemas.transcript import RichTranscript, TranscriptParseError


@dataclass(frozen=True)
class RewardItem:
    """One generated utterance and what its rewards compare it with."""

    audio: np.ndarray  # (samples,) or (samples, channels): floats in [-1, 1], or integer PCM
    sample_rate: int
    text: str | None = None  # target rich transcript: R_STT
    reference: np.ndarray | None = None  # the reference voice: R_SIM
    reference_rate: int | None = None  # None = sample_rate


class Reward(Protocol):
    name: str  # 'stt', 'quality', 'similarity' or 'total'

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]: ...


def normalise(value: float, span: Range) -> float:
    """`value` on [span.lo, span.hi] -> [0, 1], clipped."""
    return float(np.clip((value - span.lo) / (span.hi - span.lo), 0.0, 1.0))


@dataclass(frozen=True)
class Prepared:
    """An item checked and at the model's rate."""

    audio: np.ndarray
    target: RichTranscript | None = None
    reference: np.ndarray | None = None


class ItemError(ValueError):
    """This item cannot be scored by this reward; the message is the reason."""


def parse_target(text: str | None) -> RichTranscript:
    if text is None or not text.strip():
        raise ItemError("text: missing (the target transcript)")
    try:
        return RichTranscript.from_inline(text, "target", implicit_speaker=True)
    except (TranscriptParseError, ValueError) as exc:
        raise ItemError(f"text: {exc}") from exc


class ModelReward(ABC):
    """A reward computed by one model wrapper on a batch. Subclasses set `name`, `sample_rate` and `metadata` and
    implement `_score(prepared) -> results`; items that fail the checks, or make the model fail, get the worst
    reward with the reason while the rest of the batch is scored."""

    name: ClassVar[str]
    needs_text: ClassVar[bool] = False
    needs_reference: ClassVar[bool] = False
    sample_rate: int
    metadata: dict[str, str]

    def __init__(self, limits: AudioLimits):
        self.limits = limits

    def prepare(self, item: RewardItem) -> Prepared:
        try:
            wav = audio.prepare(item.audio, item.sample_rate, self.sample_rate, self.limits)
        except audio.AudioError as exc:
            raise ItemError(f"audio: {exc}") from exc
        target = parse_target(item.text) if self.needs_text else None
        reference = None
        if self.needs_reference:
            if item.reference is None:
                raise ItemError("reference: missing (the reference voice)")
            try:
                reference = audio.prepare(
                    item.reference, item.reference_rate or item.sample_rate, self.sample_rate, self.limits
                )
            except audio.AudioError as exc:
                raise ItemError(f"reference: {exc}") from exc
        return Prepared(wav, target, reference)

    @abstractmethod
    def _score(self, prepared: list[Prepared]) -> list[RewardResult]:
        """One result per prepared item, in order."""

    def _finite(self, result: RewardResult) -> RewardResult:
        """A NaN or infinite number is no reward (and not valid JSON): the item fails instead."""
        bad = [k for k, v in {self.name: result.score, **result.components}.items() if not np.isfinite(v)]
        return (
            RewardResult.failed(f"{self.name} model gave non-finite {', '.join(bad)}", metadata=self.metadata)
            if bad
            else result
        )

    def _guarded(self, prepared: list[Prepared]) -> list[RewardResult]:
        if not prepared:
            return []
        try:
            return [self._finite(r) for r in self._score(prepared)]
        except Exception:  # one item can break a batched call; find it by scoring one at a time
            out = []
            for p in prepared:
                try:
                    out.extend(self._finite(r) for r in self._score([p]))
                except Exception as exc:  # that item's reward is the worst, with the reason
                    out.append(
                        RewardResult.failed(
                            f"{self.name} model failed: {type(exc).__name__}: {exc}", metadata=self.metadata
                        )
                    )
            return out

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]:
        results: list[RewardResult | None] = [None] * len(batch)
        ready: list[tuple[int, Prepared]] = []
        for i, item in enumerate(batch):
            try:
                ready.append((i, self.prepare(item)))
            except ItemError as exc:
                results[i] = RewardResult.failed(str(exc), metadata=self.metadata)
        for (i, _), result in zip(ready, self._guarded([p for _, p in ready])):
            results[i] = result
        return results
