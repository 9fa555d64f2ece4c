"""The demo: the `local` profile (Spleeter, silero, DNSMOS, pocketsphinx + speaker turns) on examples/, twice on
Ray into two folders, once with the model stages fused in one actor pool and one input per call, once with a pool per
stage and other batch sizes everywhere: identical keys and contents (no keep/reject decision and no model result may
depend on which rows share a batch), and every sample fully annotated; and once more by the sequential executor, in
this process without Ray: the same shards, byte for byte."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.executor import SequentialExecutor
from curation.run import curate
from jobs.config import curate_config
from pipelines.curate import run_curation
from schemas.sample import Sample
from tests.conftest import EXAMPLES
from tests.pipelines.test_curate_e2e import read_shards_webdataset

pytestmark = pytest.mark.ray


def demo_config(out: Path, overrides: list[str] = ()):
    return curate_config(
        "local", direct={"input": str(EXAMPLES), "output": str(out), "ray": {"num_cpus": 2}}, overrides=overrides
    )


# a pool per model stage, and batch sizes unlike the default's one input per call (fits 2 CPUs with the writer)
REBATCHED = [
    "ray.fuse_stages=null",
    "decode.resources.concurrency=1",
    "decode.resources.batch_size=3",
    "separation.resources.batch_size=2",
    "segmentation.resources.batch_size=3",
    "quality.resources.batch_size=2",
    "transcription.resources.concurrency=1",
    "transcription.resources.batch_size=5",
]


@pytest.fixture(scope="module")
def two_runs(ray_session, tmp_path_factory):
    outs = [tmp_path_factory.mktemp(f"demo{i}") for i in range(2)]
    return [(out, run_curation(demo_config(out, over), progress=False)) for out, over in zip(outs, ([], REBATCHED))]


def test_every_sample_has_a_separation_decision_scores_and_a_transcript(two_runs):
    out, summary = two_runs[0]
    samples = read_shards_webdataset(out)
    assert summary["inputs"] == 4 and len(samples) == summary["segments_kept"] >= 4
    # speech 5 dB over music: the gate sends it to Spleeter, whose vocals stay below separation.gate.min_snr_db
    rejects = [(r["input"].rsplit("/", 1)[1], r["reason"]) for r in pq.read_table(out / "rejects.parquet").to_pylist()]
    assert rejects == [("speech_over_music.flac", "background_too_strong")]
    assert summary["inputs_with_samples"] + summary["inputs_rejected"] == summary["inputs"]
    for s in samples.values():
        rec = Sample.model_validate_json(s["json"])
        assert rec.separation and rec.separation.model_id.startswith("spleeter")
        assert rec.quality and rec.quality.model_id.startswith("dnsmos") and rec.quality.overall >= 2.8
        assert rec.transcript and rec.transcript.turns and rec.transcript.plain_text().strip()
        assert rec.transcript.render().startswith("<|speaker:0|>")
    texts = {
        Sample.model_validate_json(s["json"]).source.uri.rsplit("/", 1)[1]: Sample.model_validate_json(
            s["json"]
        ).transcript.plain_text()
        for s in samples.values()
    }
    assert texts["leopard__test.wav"].startswith("Mr. Quilter")  # the sidecar text is used


def test_fused_or_not_and_whatever_the_batch_sizes_the_shards_are_identical(two_runs):
    (a_dir, _), (b_dir, _) = two_runs
    a, b = read_shards_webdataset(a_dir), read_shards_webdataset(b_dir)
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key]["flac"] == b[key]["flac"] and a[key]["json"] == b[key]["json"]
    index = [json.loads((d / "index.json").read_text()) for d in (a_dir, b_dir)]
    assert index[0] == index[1]


def test_the_report_is_written(two_runs):
    out, summary = two_runs[0]
    assert summary["report"] == str(out / "report" / "index.html")
    page = (out / "report" / "index.html").read_text()
    assert all((out / "report" / img).exists() for img in ("durations.png", "rejects.png", "tags.png"))
    assert (
        "<img" in page
        and json.loads((out / "report" / "summary.json").read_text())["segments_kept"] == summary["segments_kept"]
    )


def test_the_sequential_executor_writes_the_same_shards_as_ray(two_runs, tmp_path):
    """The same stage objects, called in this process one piece at a time: the same bytes in every tar."""
    out = tmp_path / "sequential"
    summary = curate(demo_config(out), SequentialExecutor())
    ray_out, ray_summary = two_runs[0]
    assert {k: summary[k] for k in ("inputs", "segments_kept", "rejects_by_reason", "shards")} == {
        k: ray_summary[k] for k in ("inputs", "segments_kept", "rejects_by_reason", "shards")
    }
    shards = sorted(p.name for p in (ray_out / "shards").iterdir())
    assert shards and sorted(p.name for p in (out / "shards").iterdir()) == shards
    for name in shards:
        assert (out / "shards" / name).read_bytes() == (ray_out / "shards" / name).read_bytes(), name
    assert (out / "index.json").read_bytes() == (ray_out / "index.json").read_bytes()
