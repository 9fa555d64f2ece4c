import hashlib
import io
import json
import random
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from curation.io.plan import RunPlan
from curation.io.shards import UnitWriter, finalize, write_unit
from curation.row import Row
from curation.stages.encode import EncodeStage
from curation.stages.source import SourceStage
from schemas.config import CurateConfig, ShardConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, Sample
from tests.factories import segment_row


def rows_for(uri: str, index: int, unit: int, n: int, rejected: set[int] = frozenset()) -> list[Row]:
    """n encoded 3 s segments of a 10 s input, as they reach the writer; those in `rejected` failed quality."""
    facts = AudioFacts(sample_rate=16000, channels=1, duration_s=10.0, format="WAV")
    rows = []
    for k in range(n):
        x = np.sin(np.arange(16000 * 3) * (0.01 + 0.001 * k + index)).astype(np.float32) * 0.3
        row = segment_row(x, 16000, index, uri=uri, unit=unit, segment=k, start_s=k * 3.0, file_rows=n, facts=facts)
        if k in rejected:
            row.rejected(Stage.QUALITY, RejectReason.QUALITY_BELOW_THRESHOLD, "overall 1.0 < 2.8")
        rows.append(row)
    return EncodeStage()(rows)


def feed(writer: UnitWriter, rows: list[Row], chunk: int) -> list[int]:
    done = []
    for i in range(0, len(rows), chunk):
        done += [record["unit"] for record in writer(rows[i : i + chunk])]
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
    assert names == [
        "shard-000000-000.tar",
        "shard-000000-001.tar",
        "shard-000000-002.tar",
        "shard-000001-000.tar",
        "shard-000001-001.tar",
    ]
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
    summary, stats = finalize(str(tmp_path), plan)
    index = json.loads((tmp_path / "index.json").read_text())
    assert sum(s["nsamples"] for s in index["shardlist"]) == summary["segments_kept"] == 11
    for s in index["shardlist"]:
        data = (tmp_path / s["url"]).read_bytes()
        assert s["filesize"] == len(data) and s["sha256"] == hashlib.sha256(data).hexdigest()
    manifest = pq.read_table(tmp_path / "manifest.parquet").to_pylist()
    rejects = pq.read_table(tmp_path / "rejects.parquet").to_pylist()
    assert len(manifest) == 11 and len(rejects) == 1
    assert rejects[0]["reason"] == "quality_below_threshold" and rejects[0]["key"].endswith("_00001")
    assert summary["inputs"] == summary["inputs_with_samples"] + summary["inputs_rejected"] == 3
    assert abs(summary["hours_in"] - 30 / 3600) < 1e-9 and abs(summary["hours_out"] - 33 / 3600) < 1e-6
    assert len(stats.durations) == 11 and stats.rejects == {("quality", "quality_below_threshold"): 1}


def test_the_writer_refuses_a_kept_row_that_is_not_flac(tmp_path):
    row = segment_row(np.zeros(16000, np.float32), 16000)  # PCM: the encoder never saw it
    with pytest.raises(ValueError, match=f"row {row.key} reached the writer as pcm_s16le, not FLAC"):
        write_unit(str(tmp_path), 0, [row], ShardConfig())
    assert not (tmp_path / "_units").exists() and not (tmp_path / "shards").exists()


def test_rows_delivered_twice_replace_their_first_copy(tmp_path):
    """A retried task hands the writer rows it already has: the unit still completes once, with each row once."""
    cfg = ShardConfig(samples_per_shard=3)
    rows = make_rows()
    once, twice = tmp_path / "once", tmp_path / "twice"
    feed(UnitWriter(str(once), {0: 2, 1: 1}, cfg), rows, 4)
    writer = UnitWriter(str(twice), {0: 2, 1: 1}, cfg)
    done = feed(writer, rows[:7] + rows[:7], 3)  # the first input's rows twice before the rest arrives
    done += feed(writer, rows[7:] + rows[7:9], 2)  # and two rows of a completed input again, after it completed
    assert sorted(done) == [0, 1] and writer.pending_units() == []
    for tar in sorted((once / "shards").iterdir()):
        assert tar.read_bytes() == (twice / "shards" / tar.name).read_bytes()
    assert json.loads((once / "_units" / "unit-000000.json").read_text()) == json.loads(
        (twice / "_units" / "unit-000000.json").read_text()
    )


def test_source_stages_see_each_whole_input_once(tmp_path):
    seen = []

    class Recorder(SourceStage):
        name = Stage.TRANSCRIPTION

        def process_source(self, rows):
            seen.append(sorted({r.source_uri for r in rows}) + [len(rows)])
            rows[0].rejected(Stage.TRANSCRIPTION, RejectReason.RATE_OUTLIER, "judged over its whole source")
            return rows

    feed(UnitWriter(str(tmp_path), {0: 2, 1: 1}, ShardConfig(), [Recorder()]), make_rows(), 2)
    assert sorted(seen) == [["/a.wav", 5], ["/b.wav", 3], ["/c.wav", 4]]
    rejects = [
        r for u in (0, 1) for r in json.loads((tmp_path / "_units" / f"unit-{u:06d}.json").read_text())["rejects"]
    ]
    assert sum(r["reason"] == "rate_outlier" for r in rejects) == 3
