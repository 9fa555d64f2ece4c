"""Source stages: decisions over all the segments of one input, made once every row of that input has arrived at its
writer (curation.io.shards.UnitWriter), whatever batches carried them. Statistics over a source are a property of the
data; statistics over a batch would depend on how Ray Data happened to batch rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from curation.policy.text_filters import source_rate_verdicts, speech_rate
from curation.row import Row
from schemas.rejects import Stage


class SourceStage(ABC):
    name: ClassVar[Stage]

    @abstractmethod
    def process_source(self, rows: list[Row]) -> list[Row]:
        """All rows of one input (kept and rejected, any order) -> the same rows, some perhaps rejected."""


class SpeechRateOutliers(SourceStage):
    """Rejects the kept segments whose words (or characters) per second of speech lie beyond k x IQR of their own
    source's; a source with too few segments for quartiles keeps them (the absolute bounds still applied earlier)."""

    name = Stage.TRANSCRIPTION

    def __init__(self, k: float):
        self.k = k

    def process_source(self, rows: list[Row]) -> list[Row]:
        kept = sorted(
            (r for r in rows if r.live and r.sample is not None and r.sample.transcript is not None),
            key=lambda r: r.key,
        )
        rates = [
            speech_rate(r.sample.transcript, r.sample.vad.speech_s if r.sample.vad else r.sample.audio.duration_s)
            for r in kept
        ]
        for row, verdict in zip(kept, source_rate_verdicts(rates, self.k)):
            if verdict:
                row.rejected(self.name, *verdict)
        return rows
