"""Decode stage: one row per input in; one row per piece of it out (or one reject row).

Inputs longer than `piece_s` become several rows (pieces cut at quiet points), so memory per row is
bounded whatever the file's length. Each piece row says whether it is the input's last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from curation import storage
from curation.audio import DecodeError, iter_pieces, open_stream
from curation.batch import COLUMNS, Batch, as_lists, pcm_bytes, reject_row
from curation.keys import source_key
from schemas.config import DecodeConfig


def input_rows(inputs: list[dict]) -> list[dict]:
    """Plan items -> the rows the pipeline starts from."""
    rows = []
    for item in inputs:
        meta = {k: item[k] for k in ("sidecar_uri", "text", "speaker", "language") if k in item}
        rows.append(
            {
                "key": source_key(item["uri"]),
                "input_index": item["index"],
                "unit": item["unit"],
                "source_uri": item["uri"],
                "pcm": b"",
                "sample_rate": 0,
                "sample_json": "",
                "reject_json": "",
                "file_rows": 1,
                "meta_json": json.dumps(meta),
                "piece": 0,
                "last_piece": True,
            }
        )
    return rows


class DecodeStage:
    """Decodes straight to the rate of the first model stage, so nothing is resampled twice; with
    `upsample=False` (for a first stage that resamples what it gets itself, the separator) a source below
    that rate keeps its own, so its rows are smaller on their way there."""

    def __init__(self, cfg: DecodeConfig, sample_rate: int, upsample: bool = True):
        self.cfg = cfg
        self.sample_rate = sample_rate
        self.upsample = upsample

    def pieces(self, row: dict) -> Iterator[dict]:
        """The piece rows of one input row; a failure anywhere becomes a single reject row."""
        uri = row["source_uri"]
        meta = json.loads(row["meta_json"])
        pieces = 0
        try:
            with storage.local_copy(uri) as path:
                facts, blocks, resampler = open_stream(path, self.sample_rate, self.cfg.max_duration_s, self.upsample)
                rate = resampler.sr_out
                if "sidecar_uri" in meta and "text" not in meta:
                    meta["text"] = storage.read_text(meta.pop("sidecar_uri")).strip()
                meta["audio"] = facts.model_dump()  # the header's; the last piece gets the decoded truth
                for n, (offset, x, last) in enumerate(iter_pieces(blocks, rate, self.cfg.piece_s)):
                    piece_meta = {**meta, "offset_s": offset / rate}
                    if last:  # the true decoded duration, which only the end of the stream knows
                        seconds = resampler.frames_in / facts.sample_rate
                        if seconds < self.cfg.min_duration_s:
                            raise DecodeError("too_short", f"{seconds:.2f} s < min {self.cfg.min_duration_s} s")
                        piece_meta["audio"] = facts.model_copy(update={"duration_s": seconds}).model_dump()
                    pieces = n + 1
                    yield {**row, "meta_json": json.dumps(piece_meta), "pcm": pcm_bytes(x), "sample_rate": rate, "last_piece": last, "piece": n}
            if not pieces:
                raise DecodeError("empty_audio", "no samples decoded")
        except DecodeError as exc:
            yield reject_row(self._closing(row, pieces), "decode", exc.reason, exc.detail)
        except FileNotFoundError as exc:
            yield reject_row(self._closing(row, pieces), "decode", "missing_file", str(exc))
        except Exception as exc:  # any library failure on a bad file is that file's problem only
            yield reject_row(self._closing(row, pieces), "decode", "decode_failed", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _closing(row: dict, pieces: int) -> dict:
        """The row that closes an input after a failure: the pieces already yielded stand, and the rest of
        the input is rejected as one more, last, piece."""
        return dict(row, piece=pieces, last_piece=True, pcm=b"")

    def __call__(self, batch) -> Iterator[Batch]:
        batch = as_lists(batch)
        for i in range(len(batch["key"])):
            row = {c: batch[c][i] for c in COLUMNS}
            rows = [row] if row["reject_json"] else self.pieces(row)
            for r in rows:
                yield {c: [r[c]] for c in COLUMNS}


def decode_batch(batch, cfg: DecodeConfig, sample_rate: int, upsample: bool) -> Iterator[Batch]:
    """Stateless form for task pools: decoding needs no model, so it needs no actor."""
    yield from DecodeStage(cfg, sample_rate, upsample)(batch)
