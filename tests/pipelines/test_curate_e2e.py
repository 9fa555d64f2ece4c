"""End to end on the shared local Ray: curate real clips, read the shards back two ways, check everything."""

import io
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from curation.io.keys import KEY_RE
from pipelines.curate import run_curation
from schemas.config import CurateConfig, layered
from schemas.sample import SCHEMA_VERSION, Reject, Sample
from tests.conftest import DATA, EXAMPLES

pytestmark = pytest.mark.ray

CLIPS = [
    DATA / "speech" / "wenet__librispeech-1995-1837-0001.wav",
    DATA / "speech" / "lhotse__2412-153948-0000.flac",
    DATA / "speech" / "librosa-data__198-209-0000.hq.ogg",
    DATA / "speech" / "lhotse__LJ002-0020.wav",
    DATA / "noise" / "dishes_20s.flac",
    EXAMPLES / "speech_over_music.flac",
]


def spine_config(src, out, **over):
    layers = {
        "input": str(src),
        "output": str(out),
        "ray": {"num_cpus": 2},
        "shards": {"inputs_per_unit": 2, "samples_per_shard": 2},
    }
    stages = {"separation": {"enabled": False}, "quality": {"enabled": False}, "transcription": {"enabled": False}}
    return layered(CurateConfig, layers, stages, over)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    src = tmp_path_factory.mktemp("in")
    for clip in CLIPS:
        shutil.copy(clip, src / clip.name)
    return src


@pytest.fixture(scope="module")
def curated(ray_session, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cfg = spine_config(inputs, out)
    return cfg, run_curation(cfg, progress=False)


def read_shards_webdataset(out) -> dict[str, dict]:
    import webdataset as wds

    index = json.loads((out / "index.json").read_text())
    urls = [str(out / s["url"]) for s in index["shardlist"]]
    return {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)}


def test_every_input_ends_in_exactly_one_place(curated):
    cfg, summary = curated
    assert summary["inputs"] == len(CLIPS) == summary["inputs_with_samples"] + summary["inputs_rejected"]
    rejects = pq.read_table(f"{cfg.output}/rejects.parquet").to_pylist()
    assert "no_speech" in {r["reason"] for r in rejects}  # the dishes noise
    # LJ002 (one 1.5 s sentence) is kept whole, not rejected as too short
    manifest = pq.read_table(f"{cfg.output}/manifest.parquet").to_pylist()
    lj = [m for m in manifest if m["source_uri"].endswith("lhotse__LJ002-0020.wav")]
    assert len(lj) == 1 and lj[0]["start_s"] == 0.0 and abs(lj[0]["end_s"] - 1.54) < 0.01
    for r in rejects:
        Reject.model_validate({k: r[k] for k in Reject.model_fields})


def test_shards_decode_and_match_the_schema_and_the_policy(curated):
    from pathlib import Path

    cfg, summary = curated
    out = Path(cfg.output)
    samples = read_shards_webdataset(out)
    assert len(samples) == summary["segments_kept"] >= 4
    manifest = {r["key"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    assert set(manifest) == set(samples)
    for key, s in samples.items():
        assert KEY_RE.match(key)
        rec = Sample.model_validate_json(s["json"])
        x, sr = sf.read(io.BytesIO(s["flac"]), dtype="float32")
        # full band: the source's own rate (no separation here), up to the cap
        assert rec.key == key and sr == rec.audio.sample_rate == min(rec.source.audio.sample_rate, 48000)
        assert abs(len(x) / sr - (rec.source.end_s - rec.source.start_s)) <= 1 / sr + 1e-9
        assert cfg.segmentation.min_s <= rec.audio.duration_s <= cfg.segmentation.max_s
        assert rec.schema_version == SCHEMA_VERSION and rec.vad and rec.vad.speech_s > 0
        assert np.abs(x).max() > 0.01


def test_ray_reads_the_shards_back(curated):
    import ray

    cfg, summary = curated
    ds = ray.data.read_webdataset(f"{cfg.output}/shards", override_num_blocks=2)
    rows = ds.take_all()
    assert len(rows) == summary["segments_kept"]
    assert all(isinstance(r["flac"], bytes) and len(r["flac"]) > 1000 for r in rows)


def test_rerun_on_a_finished_output_skips_all_units(curated):
    cfg, first = curated
    again = run_curation(cfg, progress=False)
    assert again["resumed"] and again["units_skipped"] == 3
    assert again["segments_kept"] == first["segments_kept"]


@pytest.mark.parametrize(
    ("ray", "named"),
    [
        ({"fuse_stages": None}, r"segmentation\.resources 1 x1"),
        ({"fuse_stages": {"num_cpus": 1.0, "concurrency": 2}}, r"ray\.fuse_stages 1 x2"),
    ],
    ids=["pool-per-stage", "fused"],
)
def test_oversubscribed_actor_pools_fail_at_start_naming_the_settings(ray_session, inputs, tmp_path, ray, named):
    from pipelines.cluster_fit import ResourceConfigError

    heavy = {"resources": {"num_cpus": 1.0}}
    cfg = spine_config(inputs, tmp_path, segmentation=heavy, decode={"resources": {"num_cpus": 0.75}}, ray=ray)
    with pytest.raises(ResourceConfigError, match=named):
        run_curation(cfg, progress=False)
    assert not (tmp_path / "_run").exists(), (
        "a run that cannot start writes no plan (a corrected rerun would be refused)"
    )
