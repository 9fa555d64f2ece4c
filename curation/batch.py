"""The row contract every stage shares, and helpers to read and update rows in a batch.

A batch is a dict of equal-length columns. Rows flow from decode to the writer; a rejected row keeps
flowing (untouched by later stages) so that every input ends in exactly one place.

Columns:
  key          segment key ('<16 hex>_<5 digits>'); at file level '<16 hex>'
  input_index  position of the input in the run plan
  unit         work unit of the input (the grain of resume)
  source_uri   input URI
  pcm          16-bit little-endian mono PCM (bytes): half the memory of float32 in the object store and
               the actors, and the precision of the 16-bit FLAC the shards hold
  sample_rate  rate of `pcm`
  sample_json  the Sample record so far (JSON), or '' before segmentation
  reject_json  the Reject record (JSON) once rejected, else ''
  file_rows    how many rows this piece of the input produced (set by segmentation)
  meta_json    file-level facts carried from ingest/decode to segmentation (JSON)
  piece        index of the piece of the input (long inputs are decoded in pieces)
  last_piece   whether this is the input's last piece; with file_rows the writer knows when an input is complete
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from schemas.sample import Reject, Sample

COLUMNS = ("key", "input_index", "unit", "source_uri", "pcm", "sample_rate", "sample_json", "reject_json", "file_rows", "meta_json", "piece", "last_piece")

Batch = dict[str, list]


def as_lists(batch: Mapping[str, Any]) -> Batch:
    """Ray hands numpy columns (fixed-width strings would truncate on assignment): work on lists."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) and v.dtype != object else list(v)) for k, v in batch.items()}


def live(batch: Batch) -> list[int]:
    """Indices of rows not rejected yet."""
    return [i for i, r in enumerate(batch["reject_json"]) if not r]


PCM_DTYPE = "<i2"
PCM_WIDTH = 2  # bytes per sample
_SCALE = 32768.0  # libsndfile's: 16-bit files decode to exactly these floats, and encode back bit for bit


def pcm_bytes(x: np.ndarray) -> bytes:
    """float samples in [-1, 1) -> `pcm` (louder ones clip, as the 16-bit output would)."""
    x = np.asarray(x, dtype=np.float32)
    # a float64 sum is finite iff every sample is (audio cannot overflow it), with no full-size temporary
    if not np.isfinite(np.sum(x, dtype=np.float64)):
        raise ValueError("non-finite samples (NaN or inf)")
    return np.clip(np.rint(x * _SCALE), -_SCALE, _SCALE - 1).astype(PCM_DTYPE).tobytes()


def pcm_samples(batch: Batch, i: int) -> np.ndarray:
    """The row's samples as stored (int16), without a copy."""
    return np.frombuffer(batch["pcm"][i], dtype=PCM_DTYPE)


def audio(batch: Batch, i: int) -> np.ndarray:
    """The row's samples as float32 in [-1, 1)."""
    return pcm_samples(batch, i).astype(np.float32) * np.float32(1 / _SCALE)


def set_audio(batch: Batch, i: int, x: np.ndarray, sample_rate: int | None = None) -> None:
    batch["pcm"][i] = pcm_bytes(x)
    if sample_rate is not None:
        batch["sample_rate"][i] = int(sample_rate)


def sample(batch: Batch, i: int) -> Sample:
    return Sample.model_validate_json(batch["sample_json"][i])


def set_sample(batch: Batch, i: int, s: Sample) -> None:
    batch["sample_json"][i] = s.model_dump_json(exclude_none=True)


def reject_row(row: dict, stage: str, reason: str, detail: str = "") -> dict:
    """Mark a row (a dict of column values) rejected. Its audio is dropped: nothing downstream needs it."""
    key = row["key"] if "_" in row["key"] else None
    start_s = end_s = None
    if row.get("sample_json"):
        try:
            src = Sample.model_validate_json(row["sample_json"]).source
            start_s, end_s = src.start_s, src.end_s
        except ValueError:  # an unreadable record still gets its reject, without times
            pass
    rec = Reject(input=row["source_uri"], key=key, stage=stage, reason=reason, detail=detail[:2000], start_s=start_s, end_s=end_s)
    row["reject_json"] = rec.model_dump_json()
    row["pcm"] = b""
    return row


def reject(batch: Batch, i: int, stage: str, reason: str, detail: str = "") -> None:
    row = reject_row({c: batch[c][i] for c in ("key", "source_uri", "sample_json")} | {"pcm": b""}, stage, reason, detail)
    batch["reject_json"][i] = row["reject_json"]
    batch["pcm"][i] = b""


def iter_waveforms(batch: Batch, rows: list[int]) -> Iterator[np.ndarray]:
    for i in rows:
        yield audio(batch, i)


def slices(batch: Batch, size: int) -> Iterator[Batch]:
    """Consecutive batches of at most `size` rows."""
    n = len(batch["key"])
    for a in range(0, n, size):
        yield {c: v[a : a + size] for c, v in batch.items()}


def concat(batches: list[Batch]) -> Batch:
    return {c: [x for b in batches for x in b[c]] for c in batches[0]}
