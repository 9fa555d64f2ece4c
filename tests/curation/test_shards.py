import io
import json
import random
import tarfile

import numpy as np
import pyarrow.parquet as pq

from curation.batch import COLUMNS, reject_row
from curation.keys import segment_key
from curation.plan import RunPlan
from curation.shards import UnitWriter, encode_flac, finalize
from schemas.config import CurateConfig, ShardConfig
from schemas.sample import AudioFacts, Sample, SourceRef


def rows_for(uri: str, index: int, unit: int, n: int, rejected: set[int] = frozenset()) -> list[dict]:
    facts = AudioFacts(sample_rate=16000, channels=1, duration_s=10.0, format="WAV")
    rows = []
    for k in range(n):
        key = segment_key(uri, k)
        x = np.sin(np.arange(16000 * 3) * (0.01 + 0.001 * k + index)).astype(np.float32) * 0.3
        s = Sample(key=key, source=SourceRef(uri=uri, start_s=k * 3.0, end_s=k * 3.0 + 3, audio=facts), audio=AudioFacts(sample_rate=16000, channels=1, duration_s=3.0, format="FLAC"))
        row = {"key": key, "input_index": index, "unit": unit, "source_uri": uri, "pcm": encode_flac(x, 16000), "sample_rate": 16000, "sample_json": s.model_dump_json(exclude_none=True), "reject_json": "", "file_rows": n, "meta_json": "", "piece": 0, "last_piece": True}
        rows.append(reject_row(row, "quality", "quality_below_threshold", "overall 1.0 < 2.8") if k in rejected else row)
    return rows


def feed(writer: UnitWriter, rows: list[dict], chunk: int) -> list[int]:
    done = []
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        done += writer({c: [r[c] for r in part] for c in COLUMNS})["unit"]
    return done


def tar_members(path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]


def make_rows():
    return rows_for("/a.wav", 0, 0, 5, {1}) + rows_for("/b.wav", 1, 0, 3) + rows_for("/c.wav", 2, 1, 4)


def test_units_complete_only_when_all_rows_arrived_and_order_does_not_matter(tmp_path):
    cfg = ShardConfig(samples_per_shard=3)
    rows = make_rows()
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert sorted(feed(UnitWriter(str(out1), {0: 2, 1: 1}, cfg), rows, 4)) == [0, 1]
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    writer = UnitWriter(str(out2), {0: 2, 1: 1}, cfg)
    assert feed(writer, shuffled[:-1], 5) == [] or len(writer.rows) >= 1
    feed(writer, shuffled[-1:], 1)
    names = sorted(p.name for p in (out1 / "shards").iterdir())
    assert names == sorted(p.name for p in (out2 / "shards").iterdir())
    assert names == ["shard-000000-000.tar", "shard-000000-001.tar", "shard-000000-002.tar", "shard-000001-000.tar", "shard-000001-001.tar"]
    for n in names:
        assert (out1 / "shards" / n).read_bytes() == (out2 / "shards" / n).read_bytes()


def test_shards_hold_flac_and_valid_json_sorted_by_key(tmp_path):
    feed(UnitWriter(str(tmp_path), {0: 2, 1: 1}, ShardConfig(max_shard_bytes=1)), make_rows(), 100)
    keys = []
    for tar in sorted((tmp_path / "shards").iterdir()):
        members = tar_members(tar)
        assert len(members) == 2  # a byte budget smaller than one sample still writes one per shard
        (flac_name, flac), (json_name, meta) = members
        assert flac_name.endswith(".flac") and json_name == flac_name.replace(".flac", ".json")
        s = Sample.model_validate_json(meta)
        import soundfile as sf

        x, sr = sf.read(io.BytesIO(flac))
        assert sr == 16000 and abs(len(x) / sr - s.audio.duration_s) < 1e-3
        keys.append((tar.name[:12], s.key))
    assert len(keys) == 11
    for unit in {u for u, _ in keys}:  # sorted by key inside each unit's run of shards
        in_unit = [k for u, k in keys if u == unit]
        assert in_unit == sorted(in_unit)


def test_finalize_reconciles_index_manifest_and_rejects(tmp_path):
    items = [{"uri": u} for u in ("/a.wav", "/b.wav", "/c.wav")]
    cfg = CurateConfig(input="i", output=str(tmp_path), shards={"inputs_per_unit": 2, "samples_per_shard": 3})
    plan = RunPlan.create(items, cfg)
    feed(UnitWriter(str(tmp_path), plan.units, cfg.shards), make_rows(), 3)
    summary, _, _ = finalize(str(tmp_path), plan)
    index = json.loads((tmp_path / "index.json").read_text())
    assert sum(s["nsamples"] for s in index["shardlist"]) == summary["segments_kept"] == 11
    for s in index["shardlist"]:
        data = (tmp_path / s["url"]).read_bytes()
        import hashlib

        assert s["filesize"] == len(data) and s["sha256"] == hashlib.sha256(data).hexdigest()
    manifest = pq.read_table(tmp_path / "manifest.parquet").to_pylist()
    rejects = pq.read_table(tmp_path / "rejects.parquet").to_pylist()
    assert len(manifest) == 11 and len(rejects) == 1
    assert rejects[0]["reason"] == "quality_below_threshold" and rejects[0]["key"].endswith("_00001")
    assert summary["inputs"] == summary["inputs_with_samples"] + summary["inputs_rejected"] == 3
    assert abs(summary["hours_in"] - 30 / 3600) < 1e-9 and abs(summary["hours_out"] - 33 / 3600) < 1e-6
