"""Separation of speech from music and noise, where it is needed.

Gated (`separation.gate`, the default): after VAD, each utterance is scored by the quality model before separation.
A clean one (background score at least `gate.min_clean`) is written untouched, full band, and keeps those scores.
The others go through the separator, whose vocals against what it removed (at the analysis rate) give the
speech-to-background ratio: below `gate.min_snr_db` the utterance is rejected ('background_too_strong': the separated
speech cannot be trusted). The vocals are then judged by what they are: the quality model scores them, and missing any
minimum of `gate.vocals_min` (bars for separated audio) rejects the utterance ('background_too_strong'). What passes is
written untouched when the ratio is at least `gate.untouched_snr_db` (the background was negligible), else as its
vocals, with their scores. With no `vocals_min` the ratio alone decides and the quality stage scores the vocals.
`Sample.separation` records whether separation was applied and the figures it was decided on.

Ungated (`separation.gate: null`): every decoded piece is replaced by its vocals before VAD, as one row.
"""

from __future__ import annotations

import math

import numpy as np

from curation.row import AudioEncoding, Row, analysis_copy, pcm_bytes
from curation.stages.base import CurationStage, shared_model
from models.signal import effective_bandwidth_hz
from schemas.config import ModelSpec, SeparationConfig, SeparationGate
from schemas.quality import QualityScores
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, SeparationInfo


def snr_db(vocals: np.ndarray, mixture: np.ndarray) -> float:
    """Speech-to-background ratio the separator implies: its vocals against what it took away from the mixture."""
    n = min(len(vocals), len(mixture))
    v, rest = vocals[:n].astype(np.float64), mixture[:n].astype(np.float64) - vocals[:n]
    return float(10 * np.log10(max(np.mean(v**2), 1e-12) / max(np.mean(rest**2), 1e-12)))


def gate_decision(gate: SeparationGate, ratio: float, vocals: QualityScores | None) -> str:
    """What the gate makes of an utterance the separator ran on, from the separator's speech-to-background `ratio` and
    the quality model's scores of the separated `vocals`: UNTOUCHED, SEPARATED, JUDGE (the vocals' scores are needed
    and `vocals` is None), or else why it is rejected. A high ratio alone does not leave the input untouched: a music
    separator passes dish clatter as vocals, so the ratio of a noisy input can read 17 dB."""
    if gate.min_snr_db is not None and ratio < gate.min_snr_db:
        return f"separated speech {ratio:.1f} dB above the background < min_snr_db {gate.min_snr_db:g}"
    untouched = ratio >= gate.untouched_snr_db
    if gate.vocals_min:
        if vocals is None:
            return JUDGE
        # an input left untouched is held to quality.thresholds on its own scores: of its vocals only the background
        # counts there (noise passed as vocals); clean speech keeps what it had without the separator
        bars = {d: m for d, m in gate.vocals_min.items() if d == gate.dimension} if untouched else gate.vocals_min
        missed = vocals.failed(bars)
        if missed:
            return f"separated vocals' {', '.join(missed)} (vocals_min)"
    return UNTOUCHED if untouched else SEPARATED


UNTOUCHED, SEPARATED, JUDGE = "untouched", "separated", "judge"


class SeparationStage(CurationStage):
    """Rows arrive at their source's rate (up to decode.max_output_rate); the separator takes them to its own rate and
    the vocals leave at the lower of the two (a 16 kHz source stays 16 kHz, a 48 kHz one becomes the separator's 44.1),
    with their copy at `analysis_rate`. `quality_model` is the gate's scorer (the quality stage's model, reading the
    analysis copy); without a gate, whole pieces are separated before VAD and `row.separation` records the model."""

    name = Stage.SEPARATION
    empty_audio = RejectReason.SEPARATION_FAILED

    def __init__(
        self,
        cfg: SeparationConfig,
        analysis_rate: int,
        max_output_rate: int,
        quality_model: ModelSpec | None = None,
        on_error="reject",
    ):
        super().__init__(cfg.resources, on_error)
        if cfg.gate is not None and quality_model is None:
            raise ValueError(
                "separation.gate: decides on the quality model's scores; enable quality or set separation.gate=null"
            )
        self.cfg = cfg
        self.analysis_rate = analysis_rate
        self.max_output_rate = max_output_rate
        self.quality_model = quality_model

    @property
    def per_segment(self) -> bool:
        return self.cfg.gate is not None

    def setup(self) -> None:
        self.separator = shared_model(
            "separator", self.cfg.model, "separation.model", chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )
        self.scorer = shared_model("quality", self.quality_model, "quality.model") if self.per_segment else None
        self.info = SeparationInfo(
            model_id=self.separator.model_id, chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )

    def output_rate(self, input_rate: int) -> int:
        return min(input_rate, self.separator.sample_rate, self.max_output_rate)

    def process_batch(self, rows: list[Row]) -> list[Row]:
        todo = self._gate(rows) if self.per_segment else rows
        vocals = self.call_model(
            todo,
            lambda waves, rate: self.separator.vocals(waves, rate, self.output_rate(rate)),
            RejectReason.SEPARATION_FAILED,
            full_band=True,
        )
        judge = []
        for row, v in vocals:
            try:
                if not self.per_segment:
                    row.set_waveform(v, self.output_rate(row.sample_rate), self.analysis_rate)
                    row.separation = self.info
                    continue
                copy = analysis_copy(v, self.output_rate(row.sample_rate), self.analysis_rate)
                ratio = snr_db(copy, row.analysis_waveform())
                row.sample.separation = row.sample.separation.model_copy(
                    update={"speech_to_background_db": round(ratio, 2)}
                )
                decision = gate_decision(self.cfg.gate, ratio, None)
                if decision == JUDGE:
                    judge.append((row, v, copy, ratio))
                else:
                    self._decided(row, decision, v, copy)
            except ValueError as exc:  # non-finite vocals
                self.fail(row, RejectReason.SEPARATION_FAILED, exc)
        if judge:
            self._judge(judge)
        return rows

    def _judge(self, judge: list[tuple[Row, np.ndarray, np.ndarray, float]]) -> None:
        """Score the separated vocals (their analysis copies, held by stand-in rows so that a failing one is its own
        row's reject) and decide on them."""
        stand_ins = [
            row.copy(audio=pcm_bytes(copy), encoding=AudioEncoding.PCM16, sample_rate=self.analysis_rate, analysis=b"")
            for row, _, copy, _ in judge
        ]
        scored = {id(r): s for r, s in self.call_model(stand_ins, self.scorer.score, RejectReason.SEPARATION_FAILED)}
        for (row, vocals, copy, ratio), stand_in in zip(judge, stand_ins):
            if stand_in.reject is not None:
                row.rejected(self.name, stand_in.reject.reason, stand_in.reject.detail)
                continue
            scores = scored[id(stand_in)]
            dims = scores.dimensions()
            row.sample.separation = row.sample.separation.model_copy(
                update={"vocals_quality": {d: round(dims[d], 4) for d in self.cfg.gate.vocals_min if d in dims}}
            )
            self._decided(row, gate_decision(self.cfg.gate, ratio, scores), vocals, copy, scores)

    def _gate(self, rows: list[Row]) -> list[Row]:
        """Score each utterance (its analysis copy) before separation; a clean one is written untouched and keeps its
        scores. Returns those the separator must see."""
        gate, noisy = self.cfg.gate, []
        for row, scores in self.call_model(rows, self.scorer.score, RejectReason.SEPARATION_FAILED):
            background = scores.dimensions().get(gate.dimension)
            if background is None or not math.isfinite(background):
                row.rejected(self.name, RejectReason.SEPARATION_FAILED, f"no {gate.dimension!r} score to decide on")
                continue
            row.sample.quality = scores  # the scores of the audio written, unless the vocals replace it
            row.sample.separation = self.info.model_copy(update={"applied": False, "background": round(background, 4)})
            if background < gate.min_clean:
                noisy.append(row)
        return noisy

    def _decided(
        self, row: Row, decision: str, vocals: np.ndarray, copy: np.ndarray, scores: QualityScores | None = None
    ) -> None:
        """Carry out the gate's decision: the input stays (with the gate's scores), the vocals replace it (with their
        own `scores` where they were judged, else none: the quality stage scores them), or the row is rejected. The
        vocals' analysis copy is the one written with them: nothing is resampled twice."""
        if decision == UNTOUCHED:
            return
        if decision != SEPARATED:
            self._too_strong(row, decision)
            return
        rate = self.output_rate(row.sample_rate)
        row.set_waveform(vocals, rate, self.analysis_rate, analysis=copy)
        sample = row.sample
        sample.separation = sample.separation.model_copy(update={"applied": True})
        sample.quality = scores
        sample.audio = AudioFacts(
            sample_rate=rate,
            channels=1,
            duration_s=row.n_samples / rate,
            format="FLAC",
            bandwidth_hz=effective_bandwidth_hz(vocals, rate),
        )

    def _too_strong(self, row: Row, why: str) -> None:
        sep = row.sample.separation
        row.rejected(
            self.name,
            RejectReason.BACKGROUND_TOO_STRONG,
            f"{why} ({self.cfg.gate.dimension} {sep.background:.2f} before separation)",
        )
