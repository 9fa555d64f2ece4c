"""`s2 tokenize` on shards curated without codes: the input members byte for byte plus KEY.codes.npy that decode
back to each segment's length, the same bytes every run, exactly once after the driver is killed, and S3 in and
out. A tiny random-init codec (the real save and load path)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import storage
from curation.executor import SequentialExecutor
from curation.run import curate
from pipelines.tokenize import run_tokenize
from schemas.config import CurateConfig, TokenizeConfig, layered
from tests.conftest import DATA

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
CLIPS = [DATA / "fullband" / "whisper__jfk_5s.flac", *sorted((DATA / "speech").glob("pyroomacoustics__*.wav"))[:3]]


@pytest.fixture(scope="module")
def codec(tiny_codec_dir):
    return tiny_codec_dir


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """A curation without codes, one sample per shard (several shards: kill points)."""
    src = tmp_path_factory.mktemp("src")
    for clip in CLIPS:
        (src / clip.name).write_bytes(clip.read_bytes())
    out = tmp_path_factory.mktemp("curated")
    stages = {"separation": {"enabled": False}, "quality": {"enabled": False}, "transcription": {"enabled": False}}
    curate(
        layered(CurateConfig, {"input": str(src), "output": str(out), "shards": {"samples_per_shard": 1}}, stages),
        SequentialExecutor(),
    )
    return out


def config(curated, out, codec, **over) -> TokenizeConfig:
    layer = {
        "input": str(curated),
        "output": str(out),
        "codec": {
            "model": {"name": "s2-codec", "checkpoint": str(codec), "device": "cpu", "batch_size": 2},
            "resources": {"num_cpus": 1},
        },
    }
    return layered(TokenizeConfig, layer, over)


def read(root: str) -> dict[str, list[tuple[str, bytes]]]:
    out = {}
    for shard in sorted(storage.list_files(storage.join(root, "shards"))):
        with storage.local_copy(shard[0]) as local, tarfile.open(local) as tar:
            out[shard[0].rsplit("/", 1)[1]] = [(m.name, tar.extractfile(m).read()) for m in tar]
    return out


@pytest.fixture(scope="module")
def reference(ray_session, curated, codec, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenized")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_tokenize(config(curated, out, codec), progress=False)
    return out, summary


def test_the_input_members_stay_byte_for_byte_and_codes_decode_to_their_length(curated, codec, reference):
    from models import registry
    from schemas.config import ModelSpec

    out, summary = reference
    before, after = read(str(curated)), read(str(out))
    assert sorted(before) == sorted(after) and summary["samples_tokenized"] == sum(len(m) for m in before.values()) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = registry.build("codec", ModelSpec(name="s2-codec", checkpoint=str(codec), device="cpu"))
    for name, members in after.items():
        assert [m for m in members if not m[0].endswith(".codes.npy")] == before[name]  # byte for byte
        assert [m[0] for m in members] == sorted(m[0] for m in members)
        files = dict(members)
        (codes_name,) = [n for n in files if n.endswith(".codes.npy")]
        codes = np.load(io.BytesIO(files[codes_name]))
        x, sr = sf.read(io.BytesIO(files[codes_name.replace(".codes.npy", ".flac")]))
        (audio,) = model.decode([codes])
        assert 0 <= len(audio) - len(x) * 44100 / sr < model.frame_length
    index = storage.read_text(storage.join(str(out), "index.json"))
    assert '"nsamples": 1' in index and summary["samples_rejected"] == 0


def test_the_same_shards_every_run_and_exactly_once_after_the_driver_is_killed(
    ray_session, curated, codec, reference, tmp_path
):
    import ray

    ref, _ = reference
    out = tmp_path / "killed"
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "jobs.tokenize",
        "--input",
        str(curated),
        "--output",
        str(out),
        "--codec",
        str(codec),
        "--set",
        "codec.model.device=cpu",
        "--set",
        "codec.model.batch_size=2",
        "--set",
        "codec.resources.num_cpus=1",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list((out / "_units").glob("shards__*.json")) if (out / "_units").exists() else True:
        assert time.time() - t0 < 300 and proc.poll() is None, "no shard was done before the deadline"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "_units").glob("shards__*.json")))  # not a temporary of a dying write
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_tokenize(config(curated, out, codec), progress=False)
    assert summary["resumed"] and summary["shards_skipped"] >= done_before >= 1
    assert read(str(out)) == read(str(ref))
    assert (out / "index.json").read_bytes() == (ref / "index.json").read_bytes()


def test_s3_in_and_out(ray_session, curated, codec, bucket, reference):
    ref, _ = reference
    src = f"s3://{bucket}/curated"
    for path in curated.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            storage.write_bytes(f"{src}/{path.relative_to(curated).as_posix()}", path.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_tokenize(config(src, f"s3://{bucket}/tokenized", codec), progress=False)
    assert read(f"s3://{bucket}/tokenized") == read(str(ref))
