"""Separation of speech from music and noise, where it is needed.

Gated (`separation.gate`, the default): after VAD, each utterance is scored by the quality model before separation.
A clean one (background score at least `gate.min_clean`) is written untouched, full band, and keeps those scores.
The others go through the separator, whose vocals against what it removed (at the analysis rate) give the
speech-to-background ratio: at least `gate.untouched_snr_db` and the input is written untouched (the background was
negligible), below `gate.min_snr_db` the utterance is rejected ('background_too_strong': the separated speech cannot be
trusted), in between the vocals are written and scored again by the quality stage. `Sample.separation` records whether
separation was applied and the figures it was decided on.

Ungated (`separation.gate: null`): every decoded piece is replaced by its vocals before VAD, as one row.
"""

from __future__ import annotations

import math

import numpy as np

from curation.row import Row, analysis_copy
from curation.stages.base import CurationStage, shared_model
from models.signal import effective_bandwidth_hz
from schemas.config import ModelSpec, SeparationConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, SeparationInfo


def snr_db(vocals: np.ndarray, mixture: np.ndarray) -> float:
    """Speech-to-background ratio the separator implies: its vocals against what it took away from the mixture."""
    n = min(len(vocals), len(mixture))
    v, rest = vocals[:n].astype(np.float64), mixture[:n].astype(np.float64) - vocals[:n]
    return float(10 * np.log10(max(np.mean(v**2), 1e-12) / max(np.mean(rest**2), 1e-12)))


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
        for row, v in vocals:
            try:
                if self.per_segment:
                    self._separated(row, v)
                else:
                    row.set_waveform(v, self.output_rate(row.sample_rate), self.analysis_rate)
                    row.separation = self.info
            except ValueError as exc:  # non-finite vocals
                self.fail(row, RejectReason.SEPARATION_FAILED, exc)
        return rows

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

    def _separated(self, row: Row, vocals: np.ndarray) -> None:
        """Decide on the separator's vocals by their ratio to what it removed, both taken at the analysis rate (the
        vocals' copy there is the one written with them: nothing is resampled twice)."""
        gate, sample = self.cfg.gate, row.sample
        rate = self.output_rate(row.sample_rate)
        copy = analysis_copy(vocals, rate, self.analysis_rate)
        ratio = snr_db(copy, row.analysis_waveform())
        sample.separation = sample.separation.model_copy(update={"speech_to_background_db": round(ratio, 2)})
        if ratio >= gate.untouched_snr_db:
            return  # the background is negligible: the input stays, with the gate's scores
        if gate.min_snr_db is not None and ratio < gate.min_snr_db:
            row.rejected(
                self.name,
                RejectReason.BACKGROUND_TOO_STRONG,
                f"separated speech {ratio:.1f} dB above the background < min_snr_db {gate.min_snr_db:g} "
                f"({gate.dimension} {sample.separation.background:.2f} before separation)",
            )
            return
        row.set_waveform(vocals, rate, self.analysis_rate, analysis=copy)
        sample.separation = sample.separation.model_copy(update={"applied": True})
        sample.quality = None  # new audio: the quality stage scores it
        sample.audio = AudioFacts(
            sample_rate=rate,
            channels=1,
            duration_s=row.n_samples / rate,
            format="FLAC",
            bandwidth_hz=effective_bandwidth_hz(vocals, rate),
        )
