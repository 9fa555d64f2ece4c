"""Separation: each decoded piece's audio is replaced by its vocals, full band, with their analysis copy."""

from __future__ import annotations

from curation.row import Row
from curation.stages.base import CurationStage
from models import registry
from schemas.config import SeparationConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import SeparationInfo


class SeparationStage(CurationStage):
    """Rows arrive at their source's rate (up to decode.max_output_rate); the separator takes them to its own rate and
    the vocals leave at the lower of the two (a 16 kHz source stays 16 kHz, a 48 kHz one becomes the separator's 44.1),
    with their copy at `analysis_rate`; `row.separation` records the model and chunking for the Sample record."""

    name = Stage.SEPARATION
    reads = ("audio", "sample_rate")
    writes = ("audio", "sample_rate", "separation")

    def __init__(self, cfg: SeparationConfig, analysis_rate: int, max_output_rate: int, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        self.cfg = cfg
        self.analysis_rate = analysis_rate
        self.max_output_rate = max_output_rate

    def setup(self) -> None:
        self.separator = registry.build(
            "separator", self.cfg.model, "separation.model", chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )
        self.info = SeparationInfo(
            model_id=self.separator.model_id, chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )

    def output_rate(self, input_rate: int) -> int:
        return min(input_rate, self.separator.sample_rate, self.max_output_rate)

    def process_batch(self, rows: list[Row]) -> list[Row]:
        todo = []
        for row in rows:
            if not row.live:
                continue
            if not row.audio:
                row.rejected(self.name, RejectReason.SEPARATION_FAILED, "empty audio")
            else:
                todo.append(row)
        vocals = self.call_model(
            todo,
            lambda waves, rate: self.separator.vocals(waves, rate, self.output_rate(rate)),
            RejectReason.SEPARATION_FAILED,
            full_band=True,
        )
        for row, v in vocals:
            try:
                row.set_waveform(v, self.output_rate(row.sample_rate), self.analysis_rate)
                row.separation = self.info
            except ValueError as exc:  # non-finite vocals
                self.fail(row, RejectReason.SEPARATION_FAILED, exc)
        return rows
