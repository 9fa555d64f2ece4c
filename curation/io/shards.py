"""Writing the dataset: FLAC encoding, deterministic tar shards per work unit, completion records,
and the final index.json (wids), manifest.parquet and rejects.parquet.

Exactly-once: a unit's shards are written atomically, then its completion record (which lists them)
is written last. Finalisation reads completion records only, so a shard without a record is never
indexed, and a rerun of an unfinished unit rewrites byte-identical shards under the same names.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import defaultdict

from curation.io import storage
from curation.io.keys import shard_name
from curation.io.plan import RunPlan, unit_record_uri
from curation.row import AudioEncoding, Row
from schemas.config import ShardConfig
from schemas.sample import Reject, Sample

SHARDS_DIR = "shards"


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A tar whose bytes depend only on the members (fixed mtime, owner and mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def manifest_row(s: Sample, shard: str) -> dict:
    q = s.quality.dimensions() if s.quality else {}
    return {
        "key": s.key,
        "shard": shard,
        "source_uri": s.source.uri,
        "start_s": s.source.start_s,
        "end_s": s.source.end_s,
        "duration_s": s.audio.duration_s,
        "sample_rate": s.audio.sample_rate,
        "n_speakers": len({t.speaker for t in s.transcript.turns}) if s.transcript else None,
        "text": s.transcript.tagged_text() if s.transcript else None,
        **{f"quality_{k}": v for k, v in q.items()},
        "sample_json": s.model_dump_json(exclude_none=True),
    }


def write_unit(output: str, unit: int, rows: list[Row], cfg: ShardConfig) -> dict:
    """Write one unit's shards and, last, its completion record. Returns the record."""
    kept = sorted((r for r in rows if r.live), key=lambda r: r.key)
    shards, manifest, part, members, size = [], [], 0, [], 0

    def flush() -> None:
        nonlocal part, members, size
        if not members:
            return
        name = shard_name(unit, part)
        data = _tar_bytes(members)
        storage.write_bytes(storage.join(output, SHARDS_DIR, name), data)
        shards.append(
            {
                "url": f"{SHARDS_DIR}/{name}",
                "nsamples": len(members) // 2,
                "filesize": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        part, members, size = part + 1, [], 0

    for r in kept:
        if r.encoding != AudioEncoding.FLAC:
            raise ValueError(f"row {r.key} reached the writer as {r.encoding.value or 'no audio'}, not FLAC")
        if members and (len(members) // 2 >= cfg.samples_per_shard or size + len(r.audio) > cfg.max_shard_bytes):
            flush()
        s = r.sample
        members += [
            (f"{s.key}.flac", r.audio),
            (f"{s.key}.json", s.model_dump_json(exclude_none=True, indent=1).encode()),
        ]
        size += len(r.audio)
        manifest.append(manifest_row(s, f"{SHARDS_DIR}/{shard_name(unit, part)}"))
    flush()

    seconds_in: dict[str, float] = {}
    for r in rows:
        facts = r.source.audio or (r.sample.source.audio if r.sample is not None else None)
        if facts is not None:
            seconds_in[r.source_uri] = facts.duration_s
    rejects = sorted(
        (
            r.reject.model_dump(mode="json")
            | {"sample_json": r.sample.model_dump_json(exclude_none=True) if r.sample is not None else None}
            for r in rows
            if r.reject is not None
        ),
        key=lambda d: (d["input"], d["key"] or ""),
    )
    record = {
        "unit": unit,
        "inputs": sorted({r.source_uri for r in rows}),
        "shards": shards,
        "samples": manifest,
        "rejects": rejects,
        "seconds_in": sum(seconds_in.values()),
        "seconds_out": sum(m["duration_s"] for m in manifest),
    }
    storage.write_text(unit_record_uri(output, unit), json.dumps(record))
    return record


class UnitWriter:
    """Buffers rows until every input of a unit has delivered all its rows, then writes the unit.

    Rows arrive in any order. A piece of an input is complete when `file_rows` of its rows have
    arrived; an input when its last piece and all pieces before it are; a unit when all its inputs
    are. One writer sees every row of a unit, so nothing is split.
    """

    def __init__(self, output: str, units: dict[int, int], cfg: ShardConfig):
        self.output, self.units, self.cfg = output, units, cfg
        self.rows: dict[int, list[Row]] = defaultdict(list)
        self.seen: dict[tuple[int, int], int] = defaultdict(int)  # (input, piece) -> rows arrived
        self.pieces_done: dict[int, set[int]] = defaultdict(set)
        self.n_pieces: dict[int, int] = {}
        self.done_inputs: dict[int, int] = defaultdict(int)

    def _input_complete(self, idx: int) -> bool:
        return idx in self.n_pieces and len(self.pieces_done[idx]) == self.n_pieces[idx]

    def __call__(self, rows: list[Row]) -> list[dict]:
        """Take rows; return the records of the units they completed (each written)."""
        finished = []
        for row in rows:
            unit, idx, piece = row.unit, row.input_index, row.piece
            self.rows[unit].append(row)
            self.seen[idx, piece] += 1
            if row.last_piece:
                self.n_pieces[idx] = piece + 1
            if self.seen[idx, piece] == row.file_rows:
                self.pieces_done[idx].add(piece)
                if self._input_complete(idx):
                    self.done_inputs[unit] += 1
                    if self.done_inputs[unit] == self.units[unit]:
                        finished.append(write_unit(self.output, unit, self.rows.pop(unit), self.cfg))
        return finished


def _parquet(uri: str, rows: list[dict], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in columns})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.write_bytes(uri, buf.getvalue())


def finalize(output: str, plan: RunPlan) -> tuple[dict, list[dict], list[dict]]:
    """Build index.json, manifest.parquet and rejects.parquet from the completion records.

    Returns (totals, manifest rows, reject rows)."""
    records = [json.loads(storage.read_text(unit_record_uri(output, u))) for u in sorted(plan.units)]
    shards = [s for r in records for s in r["shards"]]
    samples = [m for r in records for m in r["samples"]]
    rejects = [j for r in records for j in r["rejects"]]
    index = {"__kind__": "wids-shard-index-v1", "name": "s2-curated", "wids_version": 1, "shardlist": shards}
    storage.write_text(storage.join(output, "index.json"), json.dumps(index, indent=1))
    _parquet(storage.join(output, "manifest.parquet"), samples, ["key"])
    _parquet(storage.join(output, "rejects.parquet"), rejects, list(Reject.model_fields))
    rejected_inputs = {j["input"] for j in rejects} - {m["source_uri"] for m in samples}
    by_reason: dict[str, int] = defaultdict(int)
    for j in rejects:
        by_reason[f"{j['stage']}/{j['reason']}"] += 1
    totals = {
        "inputs": len(plan.inputs),
        "inputs_with_samples": len({m["source_uri"] for m in samples}),
        "inputs_rejected": len(rejected_inputs),
        "segments_kept": len(samples),
        "segments_rejected": sum(1 for j in rejects if j["key"]),
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "hours_in": sum(r["seconds_in"] for r in records) / 3600,
        "hours_out": sum(r["seconds_out"] for r in records) / 3600,
        "shards": len(shards),
    }
    return totals, samples, rejects
