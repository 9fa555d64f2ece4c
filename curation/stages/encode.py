"""Encode: the kept rows' PCM becomes the FLAC bytes the shards hold (16-bit, lossless)."""

from __future__ import annotations

from curation.io.audio import encode_flac
from curation.row import AudioEncoding, Row
from curation.stages.base import CurationStage
from schemas.config import Resources
from schemas.rejects import Stage


class EncodeStage(CurationStage):
    name = Stage.ENCODE
    reads = ("audio", "sample_rate")
    writes = ("audio", "encoding")
    uses_models = False

    def __init__(self, resources: Resources = Resources(batch_size=16)):
        super().__init__(resources)

    def process_batch(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            if row.live and row.encoding == AudioEncoding.PCM16:
                row.audio, row.encoding = encode_flac(row.pcm(), row.sample_rate), AudioEncoding.FLAC
                row.analysis = b""  # the models are done with it: the writer needs the FLAC alone
        return rows
