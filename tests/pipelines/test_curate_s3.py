"""A whole run from an s3:// prefix to an s3:// prefix on a real S3-compatible server."""

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest

import storage
from pipelines.curate import run_curation
from schemas.sample import Sample
from tests.conftest import DATA
from tests.pipelines.test_curate_e2e import spine_config

pytestmark = pytest.mark.ray


def test_curate_s3_to_s3(ray_session, bucket):
    src, out = f"s3://{bucket}/raw", f"s3://{bucket}/curated"
    for name in ("wenet__librispeech-1995-1837-0001.wav", "lhotse__2412-153948-0000.flac", "lhotse__LJ002-0020.wav"):
        storage.write_bytes(f"{src}/{name}", (DATA / "speech" / name).read_bytes())
    storage.write_text(f"{src}/wenet__librispeech-1995-1837-0001.txt", "IT WAS THE FIRST GREAT SORROW OF HIS LIFE")
    storage.write_bytes(f"{src}/broken.wav", b"not audio at all\n" * 64)
    summary = run_curation(spine_config(src, out), progress=False)
    assert summary["inputs"] == 4 and summary["segments_kept"] >= 2 and summary["inputs_rejected"] == 1

    index = json.loads(storage.read_text(f"{out}/index.json"))
    keys = []
    for shard in index["shardlist"]:
        data = storage.read_bytes(f"{out}/{shard['url']}")
        assert len(data) == shard["filesize"]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    rec = Sample.model_validate_json(tar.extractfile(m).read())
                    assert rec.source.uri.startswith(src)
                    keys.append(rec.key)
                    if rec.source.uri.endswith("1995-1837-0001.wav"):
                        assert rec.source.text == "IT WAS THE FIRST GREAT SORROW OF HIS LIFE"
    with storage.local_copy(f"{out}/manifest.parquet") as path:
        assert sorted(pq.read_table(path).column("key").to_pylist()) == sorted(keys)
    with storage.local_copy(f"{out}/rejects.parquet") as path:
        assert pq.read_table(path).column("reason").to_pylist() == ["unreadable_container"]


def test_manifest_on_s3_with_texts(ray_session, bucket):
    src = f"s3://{bucket}/raw"
    storage.write_bytes(f"{src}/a.wav", (DATA / "speech" / "wenet__librispeech-1995-1837-0001.wav").read_bytes())
    storage.write_text(
        f"{src}/list.jsonl",
        json.dumps({"uri": f"{src}/a.wav", "text": "hello", "speaker": "spk7", "language": "en"}) + "\n",
    )
    out = f"s3://{bucket}/curated"
    run_curation(spine_config(f"{src}/list.jsonl", out), progress=False)
    with storage.local_copy(f"{out}/manifest.parquet") as path:
        rec = Sample.model_validate_json(pq.read_table(path).column("sample_json")[0].as_py())
    assert (rec.source.text, rec.source.speaker, rec.source.language) == ("hello", "spk7", "en")
