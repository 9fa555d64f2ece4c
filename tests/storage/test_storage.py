"""The one storage layer against a real S3-compatible server over HTTP (moto on 127.0.0.1), and locally: the same
calls give the same answers on both."""

from pathlib import Path

import pytest

import storage


@pytest.fixture(params=["local", "s3"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "data")
    return f"s3://{request.getfixturevalue('bucket')}/data"


def test_round_trip_listing_ranges_and_local_copy(base):
    storage.write_bytes(storage.join(base, "b", "2.wav"), b"two")
    storage.write_text(storage.join(base, "a.txt"), "one")
    storage.write_bytes(storage.join(base, "big.bin"), b"x" * (9 << 20))  # multipart upload on S3
    listed = [(uri[len(storage.normalize(base)) :], size) for uri, size in storage.list_files(base)]
    assert listed == [("/a.txt", 3), ("/b/2.wav", 3), ("/big.bin", 9 << 20)]
    assert storage.list_names(base) == ["a.txt", "b", "big.bin"]
    assert storage.list_names(storage.join(base, "absent")) == []
    assert storage.read_text(storage.join(base, "a.txt")) == "one"
    assert storage.read_range(storage.join(base, "b", "2.wav"), 1, 2) == b"wo"
    with storage.open_read(storage.join(base, "b", "2.wav")) as f:
        assert f.read() == b"two"
    assert storage.exists(storage.join(base, "a.txt")) and storage.exists(storage.join(base, "b"))
    assert not storage.exists(storage.join(base, "missing"))
    with storage.local_copy(storage.join(base, "b", "2.wav")) as path:
        assert Path(path).read_bytes() == b"two" and path.endswith(".wav")


def test_directories_copy_both_ways_and_delete(base, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "x.bin").write_bytes(b"x")
    (src / "sub" / "y.bin").write_bytes(b"yy")
    storage.put_dir(src, storage.join(base, "tree"))
    assert storage.list_names(storage.join(base, "tree")) == ["sub", "x.bin"]
    assert storage.get_dir(storage.join(base, "tree"), tmp_path / "back") == ["sub/y.bin", "x.bin"]
    assert (tmp_path / "back" / "sub" / "y.bin").read_bytes() == b"yy"
    storage.put_file(src / "x.bin", storage.join(base, "one.bin"))
    storage.get_file(storage.join(base, "one.bin"), tmp_path / "one.bin")
    assert (tmp_path / "one.bin").read_bytes() == b"x"
    storage.delete(storage.join(base, "one.bin"))
    storage.delete(storage.join(base, "one.bin"))  # absent is fine
    assert not storage.exists(storage.join(base, "one.bin"))
    storage.delete_tree(storage.join(base, "tree"))
    assert not storage.exists(storage.join(base, "tree")) and storage.list_names(storage.join(base, "tree")) == []


def test_s3_objects_are_only_visible_once_complete(bucket, tmp_path):
    """A local file that fails mid-read leaves no object behind (the upload never completes)."""
    uri = f"s3://{bucket}/partial/x.bin"
    with pytest.raises(FileNotFoundError):
        storage.put_file(tmp_path / "absent.bin", uri)
    assert not storage.exists(uri)


def test_local_writes_are_atomic_and_stale_temporaries_are_removed(tmp_path):
    target = tmp_path / "d" / "f.bin"
    storage.write_bytes(str(target), b"abc")
    assert target.read_bytes() == b"abc" and list(target.parent.iterdir()) == [target]
    with pytest.raises(RuntimeError), storage.local_atomic(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"abc" and list(target.parent.iterdir()) == [target]
    (target.parent / ".tmp-dead").mkdir()
    (target.parent / ".tmp-dead" / "f.bin").write_bytes(b"half")  # a killed writer's temporary
    assert storage.remove_stale_temporaries(str(tmp_path)) == 1
    assert list(target.parent.iterdir()) == [target]
