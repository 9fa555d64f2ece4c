"""Tokenizing shards curated without codes (`s2 tokenize`): each input shard becomes an output shard of the same name
holding its members byte for byte plus KEY.codes.npy per sample (an older KEY.codes.npy is replaced).

Exactly once and resumable like curation: the plan (input shards, the codec's weights checksum) is saved before work
starts; an output shard is written under a temporary name (or uploaded whole), then its completion record, last;
finalisation reads completion records only. A rerun skips shards with a record and rewrites the others to the same
bytes. Samples the codec cannot encode (too short, silent, unreadable) are left out of the output shard and listed in
rejects.parquet.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import soundfile as sf

import storage
from curation.io.shards import ParquetStream, add_member, sample_members
from curation.row import Row
from curation.stages.tokenize import TokenizeStage
from schemas.rejects import RejectReason, Stage
from schemas.sample import Sample

PLAN_FILE = "_run/tokenize_plan.json"
UNITS_DIR = "_units"


class TokenizePlanError(RuntimeError):
    pass


@dataclass
class TokenizePlan:
    input: str
    shards: list[str]  # shard URLs relative to the input root, as its index.json lists them
    fingerprint: str

    @classmethod
    def create(cls, input_root: str, fingerprint: str) -> TokenizePlan:
        index_uri = storage.join(input_root, "index.json")
        if not storage.exists(index_uri):
            raise TokenizePlanError(f"--input {input_root}: no index.json (the output of `s2 curate`)")
        shards = [s["url"] for s in json.loads(storage.read_text(index_uri))["shardlist"]]
        return cls(input_root, shards, fingerprint)

    def save(self, output: str) -> None:
        storage.write_text(storage.join(output, PLAN_FILE), json.dumps(vars(self)))

    @classmethod
    def load(cls, output: str) -> TokenizePlan | None:
        uri = storage.join(output, PLAN_FILE)
        return cls(**json.loads(storage.read_text(uri))) if storage.exists(uri) else None


def record_uri(output: str, shard: str) -> str:
    return storage.join(output, UNITS_DIR, shard.replace("/", "__") + ".json")


def done_shards(output: str, plan: TokenizePlan) -> set[str]:
    return {s for s in plan.shards if storage.exists(record_uri(output, s))}


def _samples(tar_path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample, members grouped by key (shards keep a key's members together)."""
    key, files = None, {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            k, _, ext = member.name.partition(".")
            if k != key and key is not None:
                yield key, files
                files = {}
            key = k
            files[ext] = tar.extractfile(member).read()
    if key is not None:
        yield key, files


def _row(key: str, files: dict[str, bytes]) -> Row:
    """A sample read back into a row the tokenize stage takes; an unreadable one comes back rejected."""
    row = Row(key=key, source_uri="", input_index=0, unit=0)
    try:
        row.sample = Sample.model_validate_json(files["json"])
        row.source_uri = row.sample.source.uri
        x, rate = sf.read(io.BytesIO(files["flac"]), dtype="float32", always_2d=True)
        row.set_waveform(x.mean(axis=1), rate)
    except Exception as exc:  # a member missing or unreadable: this sample's problem only
        row.rejected(Stage.TOKENIZE, RejectReason.BAD_SAMPLE, f"{type(exc).__name__}: {exc}")
    return row


def tokenize_shard(input_root: str, shard: str, output: str, stage: TokenizeStage) -> dict:
    """Tokenize one shard into `output` and write its completion record, last. Returns the record."""
    rejects, manifest, count = [], [], 0
    tmp = tempfile.NamedTemporaryFile(suffix=".tar", delete=False)
    tmp.close()
    try:
        with (
            storage.local_copy(storage.join(input_root, shard)) as local,
            tarfile.open(tmp.name, "w", format=tarfile.USTAR_FORMAT) as out,
        ):
            batch: list[tuple[Row, dict[str, bytes]]] = []

            def flush() -> None:
                nonlocal count
                rows = stage([r for r, _ in batch])
                for row, (_, files) in zip(rows, batch):
                    if not row.live:
                        rejects.append({"shard": shard, **row.reject.model_dump(mode="json")})
                        continue
                    kept = {ext: data for ext, data in files.items() if ext != "codes.npy"}
                    for name, data in sorted(
                        sample_members(row.key, kept.pop("flac"), kept.pop("json"), row.codes)
                        + [(f"{row.key}.{e}", d) for e, d in kept.items()]
                    ):
                        add_member(out, name, data)
                    manifest.append(
                        {
                            "key": row.key,
                            "shard": shard,
                            "frames": row.sample.codec.frames,
                            "codec_id": row.sample.codec.model_id,
                        }
                    )
                    count += 1
                batch.clear()

            for key, files in _samples(local):
                batch.append((_row(key, files), files))
                if len(batch) >= stage.batch_size:
                    flush()
            if batch:
                flush()
        target = storage.join(output, shard)
        storage.put_file(tmp.name, target)
        with open(tmp.name, "rb") as f:
            digest, size = hashlib.sha256(f.read()).hexdigest(), os.path.getsize(tmp.name)
    finally:
        os.unlink(tmp.name)
    record = {
        "shard": {"url": shard, "nsamples": count, "filesize": size, "sha256": digest},
        "samples": manifest,
        "rejects": rejects,
    }
    storage.write_text(record_uri(output, shard), json.dumps(record))
    return record


def finalize_tokenized(output: str, plan: TokenizePlan) -> dict:
    """index.json, manifest.parquet and rejects.parquet from the completion records, one shard at a time."""
    shards, kept, rejected = [], 0, 0
    manifest = ParquetStream(
        storage.join(output, "manifest.parquet"),
        [("key", "string"), ("shard", "string"), ("frames", "int64"), ("codec_id", "string")],
    )
    rejects = ParquetStream(
        storage.join(output, "rejects.parquet"),
        [
            ("shard", "string"),
            ("input", "string"),
            ("key", "string"),
            ("stage", "string"),
            ("reason", "string"),
            ("detail", "string"),
            ("start_s", "float64"),
            ("end_s", "float64"),
        ],
    )
    for shard in plan.shards:
        record = json.loads(storage.read_text(record_uri(output, shard)))
        shards.append(record["shard"])
        manifest.append(record["samples"])
        rejects.append(record["rejects"])
        kept, rejected = kept + len(record["samples"]), rejected + len(record["rejects"])
    manifest.close()
    rejects.close()
    index = {"__kind__": "wids-shard-index-v1", "name": "s2-tokenized", "wids_version": 1, "shardlist": shards}
    storage.write_text(storage.join(output, "index.json"), json.dumps(index, indent=1))
    return {"shards": len(shards), "samples_tokenized": kept, "samples_rejected": rejected, "output": output}
