"""Separation: each decoded piece's audio is replaced by its vocals, at the pipeline's output rate."""

from __future__ import annotations

from curation.row import Row
from curation.stages.base import CurationStage
from models import registry
from schemas.config import SeparationConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import SeparationInfo


class SeparationStage(CurationStage):
    """Rows arrive at the separator's native rate, or at a lower source rate that the separator takes to its
    own (curation.stages.plan.decode_rate); vocals leave at `output_rate`, and `row.separation` records the
    model and chunking for the Sample record."""

    name = Stage.SEPARATION
    reads = ("audio", "sample_rate")
    writes = ("audio", "sample_rate", "separation")

    def __init__(self, cfg: SeparationConfig, output_rate: int, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        self.cfg = cfg
        self.output_rate = output_rate

    def setup(self) -> None:
        self.separator = registry.build(
            "separator", self.cfg.model, "separation.model", chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )
        self.info = SeparationInfo(
            model_id=self.separator.model_id, chunk_s=self.cfg.chunk_s, overlap_s=self.cfg.overlap_s
        )

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
            lambda waves, rate: self.separator.vocals(waves, rate, self.output_rate),
            RejectReason.SEPARATION_FAILED,
        )
        for row, v in vocals:
            try:
                row.set_waveform(v, self.output_rate)
                row.separation = self.info
            except ValueError as exc:  # non-finite vocals
                self.fail(row, RejectReason.SEPARATION_FAILED, exc)
        return rows
