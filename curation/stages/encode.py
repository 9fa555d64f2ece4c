"""Encode: the kept rows' PCM becomes the FLAC bytes the shards hold (16-bit, lossless)."""

from __future__ import annotations

from curation.io.audio import encode_flac
from curation.row import AudioEncoding, Row
from curation.stages.base import CurationStage
from schemas.config import Resources
from schemas.rejects import RejectReason, Stage


class EncodeStage(CurationStage):
    name = Stage.ENCODE

    def __init__(self, resources: Resources = Resources(batch_size=16)):
        super().__init__(resources)

    def process_batch(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            if row.encoding == AudioEncoding.PCM16:
                try:
                    flac = encode_flac(row.pcm(), row.sample_rate)
                except Exception as exc:  # libsndfile refusing one row's audio is that row's problem
                    self.fail(row, RejectReason.STAGE_FAILED, exc)
                    continue
                self.breaker.ok()
                row.audio, row.encoding = flac, AudioEncoding.FLAC
                row.analysis = b""  # the models are done with it: the writer needs the FLAC alone
        return rows
