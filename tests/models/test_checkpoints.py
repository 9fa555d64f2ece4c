"""Weights at s3:// URIs: the start-up check only lists them; loading fetches a file or a folder once per node into
the node's cache, whatever the number of processes asking (a real S3-compatible server on 127.0.0.1)."""

import threading

import pytest

import storage
from models.checkpoints import CheckpointUnavailableError, check_s3, local_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_file_and_a_folder_are_fetched_once(bucket, cache):
    storage.write_bytes(f"s3://{bucket}/w/codec.pth", b"weights")
    storage.write_bytes(f"s3://{bucket}/w/codec.json", b"{}")
    check_s3(f"s3://{bucket}/w/codec.pth", "codec", "codec.model")
    one = local_path(f"s3://{bucket}/w/codec.pth")
    assert one.name == "codec.pth" and one.read_bytes() == b"weights"
    results = []
    threads = [threading.Thread(target=lambda: results.append(local_path(f"s3://{bucket}/w"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and sorted(p.name for p in results[0].iterdir() if not p.name.startswith(".")) == [
        "codec.json",
        "codec.pth",
    ]
    stamp = (results[0] / "codec.pth").stat().st_mtime_ns
    storage.write_bytes(f"s3://{bucket}/w/codec.pth", b"changed")  # a later ask reuses the node's copy
    assert (local_path(f"s3://{bucket}/w") / "codec.pth").stat().st_mtime_ns == stamp


def test_the_start_up_check_names_the_setting_and_downloads_nothing(bucket, cache):
    with pytest.raises(
        CheckpointUnavailableError,
        match=r"nothing at s3://(.*)/absent; check `--set quality\.model\.checkpoint=s3://\1/absent`",
    ):
        check_s3(f"s3://{bucket}/absent", "DNSMOS", "quality.model")
    assert not cache.exists()
