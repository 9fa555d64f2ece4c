"""The codec stage (tokenization): each kept segment's full-band audio, resampled once to the codec's rate, becomes its S2 codes
(KEY.codes.npy, int16 [num_codebooks, frames]) with a `codec` record in its Sample. The same stage serves the
curation graph (after transcription) and `s2 tokenize` over shards curated without codes."""

from __future__ import annotations

import numpy as np

from curation.row import Row
from curation.stages.base import CurationStage
from models import registry
from schemas.config import CodecStageConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import CodecInfo


class CodecStage(CurationStage):
    name = Stage.CODEC

    def __init__(self, cfg: CodecStageConfig, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        self.cfg = cfg

    def setup(self) -> None:
        self.codec = registry.build("codec", self.cfg.model, "codec.model")

    def _unfit(self, row: Row) -> tuple[RejectReason, str] | None:
        """Segments the codec cannot or need not encode, said before any model call."""
        at_codec_rate = row.n_samples * self.codec.sample_rate / row.sample_rate
        if at_codec_rate < self.codec.frame_length:
            return (
                RejectReason.TOO_SHORT_FOR_CODEC,
                f"{row.n_samples / row.sample_rate:.3f} s < one frame ({self.codec.frame_length / self.codec.sample_rate:.3f} s)",
            )
        peak = np.abs(row.pcm()).max() / 32768.0
        if peak < self.cfg.min_peak:
            return RejectReason.SILENT, f"peak {peak:.2e} < codec.min_peak {self.cfg.min_peak:g}"
        return None

    def process_batch(self, rows: list[Row]) -> list[Row]:
        todo = []
        for row in rows:
            verdict = self._unfit(row)
            if verdict:
                row.rejected(self.name, *verdict)
            else:
                todo.append(row)
        for row, codes in self.call_model(todo, self.codec.encode, RejectReason.CODEC_FAILED, full_band=True):
            row.codes = codes
            row.sample.codec = CodecInfo(
                model_id=self.codec.model_id,
                weights_sha256=self.codec.weights_sha256,
                sample_rate=self.codec.sample_rate,
                frame_rate=self.codec.frame_rate,
                frames=int(codes.shape[1]),
                num_codebooks=int(codes.shape[0]),
            )
        return rows
