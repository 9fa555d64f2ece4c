"""Decode stage: one row per input in, the same row out with its audio (or a reject)."""

from __future__ import annotations

import json

from curation import storage
from curation.audio import DecodeError, decode_file
from curation.batch import Batch, as_lists, live, reject, set_audio
from schemas.config import DecodeConfig


def input_rows(inputs: list[dict]) -> list[dict]:
    """Plan items -> the rows the pipeline starts from."""
    from curation.keys import source_key

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
            }
        )
    return rows


class DecodeStage:
    """Decodes straight to the rate of the first model stage, so nothing is resampled twice."""

    def __init__(self, cfg: DecodeConfig, sample_rate: int):
        self.cfg = cfg
        self.sample_rate = sample_rate

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        for i in live(batch):
            uri = batch["source_uri"][i]
            meta = json.loads(batch["meta_json"][i])
            try:
                with storage.local_copy(uri) as path:
                    decoded = decode_file(path, self.sample_rate, self.cfg.max_duration_s)
                if decoded.facts.duration_s < self.cfg.min_duration_s:
                    raise DecodeError("too_short", f"{decoded.facts.duration_s:.2f} s < min {self.cfg.min_duration_s} s")
                if "sidecar_uri" in meta and "text" not in meta:
                    meta["text"] = storage.read_text(meta.pop("sidecar_uri")).strip()
            except DecodeError as exc:
                reject(batch, i, "decode", exc.reason, exc.detail)
                continue
            except FileNotFoundError as exc:
                reject(batch, i, "decode", "missing_file", str(exc))
                continue
            except Exception as exc:  # any library failure on a bad file is that file's problem only
                reject(batch, i, "decode", "decode_failed", f"{type(exc).__name__}: {exc}")
                continue
            meta["audio"] = decoded.facts.model_dump()
            batch["meta_json"][i] = json.dumps(meta)
            set_audio(batch, i, decoded.audio, decoded.sample_rate)
        return batch


def decode_batch(batch, cfg: DecodeConfig, sample_rate: int) -> Batch:
    """Stateless form for task pools: decoding needs no model, so it needs no actor."""
    return DecodeStage(cfg, sample_rate)(batch)
