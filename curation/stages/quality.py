"""Quality scoring and filtering: each live segment gets `QualityScores` in its Sample, and is rejected if any
configured dimension is below its minimum (or NaN); the reject detail lists each failed threshold with its value,
e.g. 'overall 2.41 < 2.8; snr 1.90 < 2.5', or if its measured band is below quality.min_bandwidth_hz. A segment the separation gate scored keeps those
scores (its audio is the audio they were computed on: the input left untouched, or the separated vocals, which the
gate held to separation.gate.vocals_min, bars for separated audio, in place of these minimums); the others are
scored here."""

from __future__ import annotations

from curation.row import Row
from curation.stages.base import CurationStage, shared_model
from schemas.config import QualityConfig
from schemas.rejects import RejectReason, Stage


class QualityStage(CurationStage):
    name = Stage.QUALITY
    empty_audio = RejectReason.INVALID_AUDIO

    def __init__(self, cfg: QualityConfig, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        self.cfg = cfg

    def setup(self) -> None:
        self.scorer = shared_model("quality", self.cfg.model, "quality.model")
        for dim in self.cfg.thresholds:
            if dim not in self.scorer.dimensions:
                raise ValueError(
                    f"quality.thresholds.{dim}: scorer {self.scorer.model_id!r} does not score {dim!r} (it scores {', '.join(self.scorer.dimensions)})"
                )

    def process_batch(self, rows: list[Row]) -> list[Row]:
        unscored = [r for r in rows if r.sample.quality is None]
        for row, scores in self.call_model(unscored, self.scorer.score, RejectReason.QUALITY_FAILED):
            row.sample.quality = scores
        for row in rows:
            if row.live:
                sep = row.sample.separation
                judged = sep is not None and sep.applied and sep.vocals_quality is not None
                # separated vocals the gate judged were held to its bars for separated audio
                failed = [] if judged else row.sample.quality.failed(self.cfg.thresholds)
                band, min_band = row.sample.audio.bandwidth_hz, self.cfg.min_bandwidth_hz
                if failed:
                    row.rejected(self.name, RejectReason.QUALITY_BELOW_THRESHOLD, "; ".join(failed))
                elif min_band is not None and band is not None and band < min_band:
                    row.rejected(self.name, RejectReason.NARROW_BAND, f"bandwidth {band:.0f} Hz < min {min_band:g} Hz")
        return rows
