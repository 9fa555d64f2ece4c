"""Decode: one row per input in; one row per piece of it out (or one reject row).

Inputs longer than `piece_s` become several rows (pieces cut at quiet points), so memory per row is bounded
whatever the file's length. Each piece row says whether it is the input's last.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import storage
from curation.io.audio import DecodeError, iter_pieces, open_stream
from curation.io.keys import source_key
from curation.row import Row, SourceInfo
from curation.stages.base import CurationStage
from schemas.config import DecodeConfig
from schemas.rejects import RejectReason, Stage


class InputNotOnNodeError(RuntimeError):
    """A local input whose folder this node cannot see: the run's inputs are not on storage all nodes share. Not a
    bad file (a reject) but a configuration that cannot work: the run stops, naming the node."""


def _missing(uri: str, exc: FileNotFoundError) -> None:
    """A missing local file in an existing folder is that file's problem (vanished since listing); a missing folder
    means this node does not have the inputs at all."""
    if not storage.is_s3(uri) and not Path(uri).parent.is_dir():
        raise InputNotOnNodeError(
            f"input {uri} is not visible on node {socket.gethostname()} (its folder is missing there): put the inputs on "
            "storage every node mounts, or on s3://"
        ) from exc


def input_rows(inputs: list[dict]) -> list[Row]:
    """Plan items -> the rows the pipeline starts from."""
    return [
        Row(
            key=source_key(item["uri"]),
            source_uri=item["uri"],
            input_index=item["index"],
            unit=item["unit"],
            source=SourceInfo(**{k: item[k] for k in ("sidecar_uri", "text", "speaker", "language") if k in item}),
        )
        for item in inputs
    ]


class DecodeStage(CurationStage):
    """Decodes each input at its own rate up to `sample_rate` (never upsampled: the full band is what the shards keep),
    and, with `analysis_rate`, makes the copy the analysis models read (when separation runs, it makes that copy
    from the separated audio instead)."""

    name = Stage.DECODE
    reads = ("source_uri", "source")
    writes = ("audio", "sample_rate", "piece", "last_piece", "source")
    uses_models = False

    def __init__(self, cfg: DecodeConfig, sample_rate: int, analysis_rate: int | None = None):
        super().__init__(cfg.resources)
        self.cfg = cfg
        self.sample_rate = sample_rate
        self.analysis_rate = analysis_rate

    def pieces(self, row: Row) -> Iterator[Row]:
        """The piece rows of one input row; a failure anywhere becomes one more, last, reject row."""
        pieces = 0
        try:
            if not storage.is_s3(row.source_uri) and not Path(row.source_uri).is_file():
                raise FileNotFoundError(f"no such file: {row.source_uri}")  # libraries would call it unreadable
            with storage.local_copy(row.source_uri) as path:
                facts, blocks, resampler = open_stream(path, self.sample_rate, self.cfg.max_duration_s, upsample=False)
                rate = resampler.sr_out
                source = replace(row.source, audio=facts)  # the header's facts; the last piece gets the decoded truth
                if source.sidecar_uri is not None and source.text is None:
                    source = replace(source, sidecar_uri=None, text=storage.read_text(source.sidecar_uri).strip())
                for n, (offset, x, last) in enumerate(iter_pieces(blocks, rate, self.cfg.piece_s)):
                    audio = facts
                    if last:  # the true decoded duration, which only the end of the stream knows
                        seconds = resampler.frames_in / facts.sample_rate
                        if seconds < self.cfg.min_duration_s:
                            raise DecodeError("too_short", f"{seconds:.2f} s < min {self.cfg.min_duration_s} s")
                        audio = facts.model_copy(update={"duration_s": seconds})
                    pieces = n + 1
                    piece = row.copy(
                        piece=n, last_piece=last, source=replace(source, audio=audio, offset_s=offset / rate)
                    )
                    piece.set_waveform(x, rate, self.analysis_rate)
                    yield piece
            if not pieces:
                raise DecodeError("empty_audio", "no samples decoded")
        except DecodeError as exc:
            yield self._closing(row, pieces).rejected(self.name, RejectReason(exc.reason), exc.detail)
        except FileNotFoundError as exc:
            _missing(row.source_uri, exc)
            yield self._closing(row, pieces).rejected(self.name, RejectReason.MISSING_FILE, str(exc))
        except Exception as exc:  # any library failure on a bad file is that file's problem only
            if self.on_error == "raise":
                raise
            yield self._closing(row, pieces).rejected(
                self.name, RejectReason.DECODE_FAILED, f"{type(exc).__name__}: {exc}"
            )

    @staticmethod
    def _closing(row: Row, pieces: int) -> Row:
        """The row that closes an input after a failure: the pieces already yielded stand, and the rest of the
        input is rejected as one more, last, piece."""
        return row.copy(piece=pieces, last_piece=True)

    def stream(self, rows: Iterable[Row]) -> Iterator[Row]:
        """Pieces as they are decoded: a long input is never whole in memory."""
        for row in rows:
            yield from (self.pieces(row) if row.live else [row])

    def process_batch(self, rows: list[Row]) -> list[Row]:
        return list(self.stream(rows))
