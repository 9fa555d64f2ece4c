"""Storage against a real S3-compatible server over HTTP (moto on 127.0.0.1), and locally."""

from pathlib import Path

from curation.io import storage


def test_s3_round_trip_listing_and_local_copy(bucket):
    base = f"s3://{bucket}/data"
    storage.write_bytes(f"{base}/b/2.wav", b"two")
    storage.write_text(f"{base}/a.txt", "one")
    storage.write_bytes(f"{base}/big.bin", b"x" * (9 << 20))  # multipart upload
    assert list(storage.list_files(base)) == [
        (f"{base}/a.txt", 3),
        (f"{base}/b/2.wav", 3),
        (f"{base}/big.bin", 9 << 20),
    ]
    assert storage.read_text(f"{base}/a.txt") == "one"
    assert storage.exists(f"{base}/a.txt") and not storage.exists(f"{base}/missing")
    with storage.local_copy(f"{base}/b/2.wav") as path:
        assert Path(path).read_bytes() == b"two" and path.endswith(".wav")
    assert not Path(path).exists()


def test_local_writes_are_atomic_and_stale_temporaries_are_removed(tmp_path):
    target = tmp_path / "d" / "f.bin"
    storage.write_bytes(str(target), b"abc")
    assert target.read_bytes() == b"abc" and list(target.parent.iterdir()) == [target]
    (target.parent / ".tmp-dead-f.bin").write_bytes(b"half")
    assert storage.remove_stale_temporaries(str(tmp_path)) == 1
    assert list(target.parent.iterdir()) == [target]
