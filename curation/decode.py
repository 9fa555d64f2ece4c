"""Decode stage: one row per input in; one row per piece of it out (or one reject row).

Inputs longer than `piece_s` become several rows (pieces cut at quiet points), so memory per row is
bounded whatever the file's length. Each piece row says whether it is the input's last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from curation import storage
from curation.audio import DecodeError, iter_pieces, open_stream
from curation.batch import COLUMNS, Batch, as_lists, reject_row
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
    """Decodes straight to the rate of the first model stage, so nothing is resampled twice."""

    def __init__(self, cfg: DecodeConfig, sample_rate: int):
        self.cfg = cfg
        self.sample_rate = sample_rate

    def pieces(self, row: dict) -> Iterator[dict]:
        """The piece rows of one input row; a failure anywhere becomes a single reject row."""
        uri = row["source_uri"]
        meta = json.loads(row["meta_json"])
        out: list[dict] = []
        try:
            with storage.local_copy(uri) as path:
                facts, blocks, resampler = open_stream(path, self.sample_rate, self.cfg.max_duration_s)
                if "sidecar_uri" in meta and "text" not in meta:
                    meta["text"] = storage.read_text(meta.pop("sidecar_uri")).strip()
                # materialise a piece only when the next exists, so the last one is known as last
                meta["audio"] = facts.model_dump()  # the header's; the last piece gets the decoded truth
                for n, (offset, x) in enumerate(iter_pieces(blocks, self.sample_rate, self.cfg.piece_s)):
                    out.append({**row, "meta_json": json.dumps({**meta, "offset_s": offset / self.sample_rate}), "pcm": x.astype("<f4").tobytes(), "sample_rate": self.sample_rate, "last_piece": False, "piece": n})
                    if len(out) > 1:
                        yield out.pop(0)
            seconds = resampler.frames_in / facts.sample_rate
            if not out:
                raise DecodeError("empty_audio", "no samples decoded")
            if seconds < self.cfg.min_duration_s:
                raise DecodeError("too_short", f"{seconds:.2f} s < min {self.cfg.min_duration_s} s")
        except DecodeError as exc:
            yield reject_row(self._first(row, out), "decode", exc.reason, exc.detail)
            return
        except FileNotFoundError as exc:
            yield reject_row(self._first(row, out), "decode", "missing_file", str(exc))
            return
        except Exception as exc:  # any library failure on a bad file is that file's problem only
            yield reject_row(self._first(row, out), "decode", "decode_failed", f"{type(exc).__name__}: {exc}")
            return
        last = out[0]
        last_meta = json.loads(last["meta_json"])
        # the true decoded duration, which only the end of the stream knows, goes on the last piece
        last_meta["audio"] = facts.model_copy(update={"duration_s": seconds}).model_dump()
        yield {**last, "last_piece": True, "meta_json": json.dumps(last_meta)}

    @staticmethod
    def _first(row: dict, pending: list[dict]) -> dict:
        """Reject on the row still pending (or the input row): pieces already yielded stay valid
        only if a later piece closes the input, so a mid-stream failure rejects the piece in hand."""
        return dict(pending[0], last_piece=True, pcm=b"") if pending else dict(row)

    def __call__(self, batch) -> Iterator[Batch]:
        batch = as_lists(batch)
        for i in range(len(batch["key"])):
            row = {c: batch[c][i] for c in COLUMNS}
            rows = [row] if row["reject_json"] else self.pieces(row)
            for r in rows:
                yield {c: [r[c]] for c in COLUMNS}


def decode_batch(batch, cfg: DecodeConfig, sample_rate: int) -> Iterator[Batch]:
    """Stateless form for task pools: decoding needs no model, so it needs no actor."""
    yield from DecodeStage(cfg, sample_rate)(batch)
