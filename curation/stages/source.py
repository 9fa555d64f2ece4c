"""Source stages: decisions over all the segments of one input, made once every row of that input has arrived at its
writer (curation.io.shards.UnitWriter), whatever batches carried them. Statistics over a source are a property of the
data; statistics over a batch would depend on how Ray Data happened to batch rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from curation.policy.diarization import DiarizationParams, diarize_source
from curation.policy.text_filters import source_rate_verdicts, speech_rate
from curation.policy.turns import model_turn_source_ids, speaker_turns_mapped
from curation.row import Row
from curation.stages.base import GuardedStage
from schemas.rejects import RejectReason, Stage


class SourceStage(GuardedStage, ABC):
    @abstractmethod
    def process_source(self, rows: list[Row]) -> list[Row]:
        """All rows of one input (kept and rejected, any order) -> the same rows, some perhaps rejected."""

    def __call__(self, rows: list[Row]) -> list[Row]:
        """`process_source` through the one failure path: when it raises on a source, that source's live rows are
        rejected (or the run stops, when the failure is the run's)."""
        live = [r for r in rows if r.live]
        if not live:
            return rows
        try:
            out = self.process_source(rows)
        except Exception as exc:
            self.breaker.failure(exc, len(live))
            if self.on_error == "raise":
                raise
            for row in live:
                row.rejected(self.name, RejectReason.STAGE_FAILED, f"{type(exc).__name__}: {exc}")
            return rows
        self.breaker.ok(len(live))
        return out


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


class SourceSpeakers(SourceStage):
    """Source-level diarization: the voices of all the kept segments of one input (their windows' embeddings, kept on
    the rows by the transcription stage) are clustered together, and every segment's turns get the source's speaker
    ids (`Turn.source_speaker`: one voice, one id, in every segment of a recording), and `Sample.source_speakers` the
    number of speakers of the source. Words are reassigned to the source-level turns, so a segment whose two voices
    its own diarization could not tell apart gets two turns, and one it split in two that are one voice of the source
    gets one. Turns a transcriber wrote itself (Qwen3-Omni) are kept as written: each of its speakers takes the
    source speaker its turns overlap most (curation.policy.turns.model_turn_source_ids). With `max_speakers`, a segment with more distinct speakers is rejected ('too_many_speakers'); segments
    whose speakers come from a sidecar with its own turns count those."""

    name = Stage.TRANSCRIPTION

    def __init__(self, params: DiarizationParams, max_speakers: int | None = None):
        self.params = params
        self.max_speakers = max_speakers

    def process_source(self, rows: list[Row]) -> list[Row]:
        kept = sorted(
            (r for r in rows if r.live and r.sample is not None and r.sample.transcript is not None),
            key=lambda r: r.key,
        )
        voiced = [r for r in kept if r.speakers is not None]
        turns, n_speakers = diarize_source([r.speakers.voices for r in voiced], self.params)
        for row, seg_turns in zip(voiced, turns):
            t = row.sample.transcript
            row.sample.source_speakers = n_speakers
            if seg_turns and row.speakers.model_turns:
                ids = model_turn_source_ids(t.turns, seg_turns, row.speakers.voices.duration_s)
                t.turns = [turn.model_copy(update={"source_speaker": i}) for turn, i in zip(t.turns, ids)]
            elif seg_turns:
                new, owner = speaker_turns_mapped(t.words or [], seg_turns, row.speakers.text)
                by_local = {local: source for source, local in owner.items()}
                t.turns = [turn.model_copy(update={"source_speaker": by_local[turn.speaker]}) for turn in new]
            row.speakers = None  # done with: the writer holds the rows until the unit is written
        if self.max_speakers is not None:
            for row in kept:
                n = len(row.sample.transcript.speakers())
                if n > self.max_speakers:
                    row.rejected(
                        self.name,
                        RejectReason.TOO_MANY_SPEAKERS,
                        f"{n} speakers in the segment > max_speakers {self.max_speakers}",
                    )
        return rows
