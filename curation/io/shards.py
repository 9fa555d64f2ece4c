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
import os
import tarfile
import tempfile
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import storage
from curation.io.keys import shard_name
from curation.io.plan import RunPlan, unit_record_uri
from curation.report.stats import RunStats
from curation.row import AudioEncoding, Row
from curation.stages.source import SourceStage
from schemas.config import ShardConfig
from schemas.quality import QUALITY_DIMENSIONS
from schemas.sample import Sample

SHARDS_DIR = "shards"


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A member whose header depends only on its name and size (fixed mtime, owner and mode)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class ShardSpool:
    """One shard written member by member to a local temporary file (never whole in memory), then stored under its
    name: its bytes depend only on the members. `offset` is where the next member's data will start (a 512-byte
    header before it, data padded to 512)."""

    def __init__(self):
        self.file = tempfile.NamedTemporaryFile(suffix=".tar")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.USTAR_FORMAT)
        self.offset = 512

    def add(self, name: str, data: bytes) -> None:
        add_member(self.tar, name, data)
        self.offset += 512 + -(-len(data) // 512) * 512

    def store(self, uri: str) -> dict:
        """Close the tar, store it at `uri`; returns its size and SHA-256."""
        self.tar.close()
        self.file.flush()
        digest, size = hashlib.sha256(), 0
        self.file.seek(0)
        while chunk := self.file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        storage.put_file(self.file.name, uri)
        self.file.close()
        return {"filesize": size, "sha256": digest.hexdigest()}


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
        "bandwidth_hz": s.audio.bandwidth_hz,
        "n_speakers": len({t.speaker for t in s.transcript.turns}) if s.transcript else None,
        "source_speakers": s.source_speakers,
        "language": s.language,
        "language_source": s.language_source,
        "text": s.transcript.tagged_text() if s.transcript else None,
        **{f"quality_{k}": v for k, v in q.items()},
        "codec_frames": s.codec.frames if s.codec else None,
        "sample_json": s.model_dump_json(exclude_none=True),
    }


def sample_members(key: str, flac: bytes, record: bytes, codes: np.ndarray | None = None) -> list[tuple[str, bytes]]:
    """One sample's tar members, by name: KEY.codes.npy (when there are codes), KEY.flac, KEY.json."""
    members = [(f"{key}.flac", flac), (f"{key}.json", record)]
    if codes is not None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(codes, dtype=np.int16), allow_pickle=False)
        members.insert(0, (f"{key}.codes.npy", buf.getvalue()))
    return members


def write_unit(output: str, unit: int, rows: list[Row], cfg: ShardConfig) -> dict:
    """Write one unit's shards and, last, its completion record. Returns the record: its manifest rows also say where
    each KEY.flac lies in its shard (flac_offset, flac_size), for the report's players."""
    kept = sorted((r for r in rows if r.live), key=lambda r: r.key)
    shards, manifest, part, spool, size, count = [], [], 0, None, 0, 0

    def flush() -> None:
        nonlocal part, spool, size, count
        if spool is None:
            return
        name = shard_name(unit, part)
        stored = spool.store(storage.join(output, SHARDS_DIR, name))
        shards.append({"url": f"{SHARDS_DIR}/{name}", "nsamples": count, **stored})
        part, spool, size, count = part + 1, None, 0, 0

    for r in kept:
        if r.encoding != AudioEncoding.FLAC:
            raise ValueError(f"row {r.key} reached the writer as {r.encoding.value or 'no audio'}, not FLAC")
        if spool is not None and (count >= cfg.samples_per_shard or size + len(r.audio) > cfg.max_shard_bytes):
            flush()
        spool = spool or ShardSpool()
        s = r.sample
        row = manifest_row(s, f"{SHARDS_DIR}/{shard_name(unit, part)}")
        for name, data in sample_members(
            s.key, r.audio, s.model_dump_json(exclude_none=True, indent=1).encode(), r.codes
        ):
            if name.endswith(".flac"):
                row["flac_offset"], row["flac_size"] = spool.offset, len(data)
            spool.add(name, data)
        manifest.append(row)
        size += len(r.audio)
        count += 1
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
        key=lambda d: (
            d["input"],
            d["key"] or "",
            json.dumps(d, sort_keys=True),
        ),  # total order: arrival order must not matter
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


def unit_summary(record: dict) -> dict:
    """What the driver learns of a written unit."""
    return {"unit": record["unit"], "samples": len(record["samples"]), "rejects": len(record["rejects"])}


class UnitWriter:
    """Buffers rows until every input of a unit has delivered all its rows, then writes the unit.

    Rows arrive in any order. A piece of an input is complete when `file_rows` of its rows have arrived; an input
    when its last piece and all pieces before it are; a unit when all its inputs are. When an input is complete the
    source stages see all its rows (decisions over a whole source, never over a batch). One writer sees every row of
    a unit, so nothing is split. A row delivered twice (a retried task) replaces its first copy: rows are identified
    by input, piece and key.
    """

    def __init__(self, output: str, units: dict[int, int], cfg: ShardConfig, source_stages: Sequence[SourceStage] = ()):
        self.output, self.units, self.cfg = output, units, cfg
        self.source_stages = list(source_stages)
        self.rows: dict[int, dict[int, dict[tuple[int, str], Row]]] = defaultdict(
            lambda: defaultdict(dict)
        )  # unit -> input -> rows
        self.arrived: dict[int, dict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )  # input -> piece -> distinct rows
        self.expected: dict[int, dict[int, int]] = defaultdict(dict)  # input -> piece -> rows the piece became
        self.n_pieces: dict[int, int] = {}
        self.done: dict[int, set[int]] = defaultdict(set)  # unit -> completed inputs

    def _input_complete(self, idx: int) -> bool:
        n = self.n_pieces.get(idx)
        return n is not None and all(self.arrived[idx][p] == self.expected[idx].get(p) for p in range(n))

    def __call__(self, rows: list[Row]) -> list[dict]:
        """Take rows; return the records of the units they completed (each written)."""
        finished = []
        for row in rows:
            unit, idx = row.unit, row.input_index
            if idx in self.done[unit]:
                continue  # a late duplicate of an input already complete
            source = self.rows[unit][idx]
            if (row.piece, row.key) not in source:
                self.arrived[idx][row.piece] += 1
            source[row.piece, row.key] = row
            self.expected[idx][row.piece] = row.file_rows
            if row.last_piece:
                self.n_pieces[idx] = row.piece + 1
            if self._input_complete(idx):
                complete = list(source.values())
                for stage in self.source_stages:
                    complete = stage(complete)
                self.rows[unit][idx] = {(r.piece, r.key): r for r in complete}
                self.done[unit].add(idx)
                del self.arrived[idx], self.expected[idx], self.n_pieces[idx]
                if len(self.done[unit]) == self.units[unit]:
                    unit_rows = [r for source_rows in self.rows.pop(unit).values() for r in source_rows.values()]
                    finished.append(write_unit(self.output, unit, unit_rows, self.cfg))
        return finished

    def pending_units(self) -> list[int]:
        return sorted(self.rows)


MANIFEST_SCHEMA = [
    ("key", "string"), ("shard", "string"), ("source_uri", "string"), ("start_s", "float64"), ("end_s", "float64"),
    ("duration_s", "float64"), ("sample_rate", "int64"), ("bandwidth_hz", "float64"), ("n_speakers", "int64"),
    ("source_speakers", "int64"),
    ("language", "string"), ("language_source", "string"), ("text", "string"),
    *((f"quality_{d}", "float64") for d in QUALITY_DIMENSIONS),
    ("codec_frames", "int64"), ("sample_json", "string"),
]  # fmt: skip
REJECTS_SCHEMA = [
    ("input", "string"), ("key", "string"), ("stage", "string"), ("reason", "string"), ("detail", "string"),
    ("start_s", "float64"), ("end_s", "float64"), ("sample_json", "string"),
]  # fmt: skip


class ParquetStream:
    """Rows appended a unit at a time into one Parquet file with a fixed schema (a row group per append), written
    under a temporary local name and moved into place (or uploaded) whole when closed: no run holds all its rows."""

    def __init__(self, uri: str, schema: list[tuple[str, str]]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.uri = uri
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in schema])
        self.tmp = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)
        self.writer = pq.ParquetWriter(self.tmp.name, self.schema)

    def append(self, rows: list[dict]) -> None:
        import pyarrow as pa

        if rows:
            self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
        try:
            storage.put_file(self.tmp.name, self.uri)
        finally:
            os.unlink(self.tmp.name)


# completion records read ahead at once: one read per unit is a round trip to S3, which a few threads overlap
RECORDS_AHEAD = 16


def unit_records(output: str, units: Sequence[int]) -> Iterator[dict]:
    """The completion records of `units`, in that order, each read while the ones before it are processed (at most
    RECORDS_AHEAD in memory)."""
    with ThreadPoolExecutor(min(RECORDS_AHEAD, 8)) as pool:
        ahead: deque = deque()
        for unit in units:
            ahead.append(pool.submit(storage.read_text, unit_record_uri(output, unit)))
            if len(ahead) == RECORDS_AHEAD:
                yield json.loads(ahead.popleft().result())
        while ahead:
            yield json.loads(ahead.popleft().result())


def finalize(output: str, plan: RunPlan) -> tuple[dict, RunStats]:
    """Build index.json, manifest.parquet and rejects.parquet from the completion records, one record at a time.

    Returns the run's totals and the report's statistics."""
    shards: list[dict] = []
    stats = RunStats()
    inputs_with_samples: set[str] = set()
    rejected_inputs: set[str] = set()
    totals = {"segments_kept": 0, "segments_rejected": 0, "seconds_in": 0.0, "seconds_out": 0.0}
    manifest = ParquetStream(storage.join(output, "manifest.parquet"), MANIFEST_SCHEMA)
    rejects = ParquetStream(storage.join(output, "rejects.parquet"), REJECTS_SCHEMA)
    for record in unit_records(output, sorted(plan.units)):
        shards += record["shards"]
        manifest.append(record["samples"])
        rejects.append(record["rejects"])
        for m in record["samples"]:
            inputs_with_samples.add(m["source_uri"])
            sample = Sample.model_validate_json(m["sample_json"])
            stats.add_kept(sample)
            stats.examples.add_kept(m, sample)
        for j in record["rejects"]:
            rejected_inputs.add(j["input"])
            sample = Sample.model_validate_json(j["sample_json"]) if j.get("sample_json") else None
            stats.add_reject(j["stage"], j["reason"], sample)
            stats.examples.add_reject(j, sample)
        stats.add_sources(record["samples"])
        totals["segments_kept"] += len(record["samples"])
        totals["segments_rejected"] += sum(1 for j in record["rejects"] if j["key"])
        totals["seconds_in"] += record["seconds_in"]
        totals["seconds_out"] += record["seconds_out"]
    manifest.close()
    rejects.close()
    index = {"__kind__": "wids-shard-index-v1", "name": "s2-curated", "wids_version": 1, "shardlist": shards}
    storage.write_text(storage.join(output, "index.json"), json.dumps(index, indent=1))
    summary = {
        "inputs": plan.n_inputs,
        "inputs_with_samples": len(inputs_with_samples),
        "inputs_rejected": len(rejected_inputs - inputs_with_samples),
        "segments_kept": totals["segments_kept"],
        "segments_rejected": totals["segments_rejected"],
        "rejects_by_reason": {f"{stage}/{reason}": n for (stage, reason), n in sorted(stats.rejects.items())},
        "hours_in": totals["seconds_in"] / 3600,
        "hours_out": totals["seconds_out"] / 3600,
        "shards": len(shards),
    }
    return summary, stats
