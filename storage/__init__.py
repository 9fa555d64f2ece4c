"""Local paths and s3:// URIs behind one small API, for curation, training and model weights alike.

Writes are atomic: a reader never sees half a file. Locally a file is written under a temporary name in its folder,
fsynced and renamed into place; on S3 an object becomes visible only when its upload completes, so boto3's managed
transfers (multipart above 8 MiB) are atomic by themselves.

S3 goes through boto3, the project's S3 client, built once per process by `s3_client` on the standard AWS chain
(environment, config files, instance roles; AWS_ENDPOINT_URL for S3-compatible servers). boto3 rather than
pyarrow.fs or fsspec because its managed transfers already give the streaming, multipart and retry behaviour this
layer needs, and it is a named dependency; nothing else in the project opens an S3 client.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_TEMP_PREFIX = ".tmp-"


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@functools.lru_cache(maxsize=1)
def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base, *parts))


def normalize(uri: str) -> str:
    """Absolute local paths (keys hash the URI, so the same file gets the same key from any cwd)."""
    return uri if is_s3(uri) else str(Path(uri).expanduser().resolve())


def _not_found(exc) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def exists(uri: str) -> bool:
    """A file or folder locally; on S3 an object, or a prefix with objects under it (a 'folder')."""
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    client = s3_client()
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError as exc:
        if not _not_found(exc):
            raise
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
    return bool(listed.get("Contents"))


def list_files(prefix: str) -> Iterator[tuple[str, int]]:
    """(uri, size) of every file under a folder or s3:// prefix, recursively, in sorted order."""
    if is_s3(prefix):
        bucket, key = split_s3(prefix)
        key = key.rstrip("/") + "/" if key else ""
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        items = [(f"s3://{bucket}/{o['Key']}", o["Size"]) for page in pages for o in page.get("Contents", [])]
        yield from sorted(items)
        return
    root = Path(prefix)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path.resolve()), path.stat().st_size


def list_names(uri: str) -> list[str]:
    """Names directly below a folder or prefix (files and sub-folders), sorted; [] when there is none."""
    if not is_s3(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    bucket, key = split_s3(uri.rstrip("/") + "/")
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, Delimiter="/")
    names = set()
    for page in pages:
        names |= {p["Prefix"][len(key) :].rstrip("/") for p in page.get("CommonPrefixes", [])}
        names |= {o["Key"][len(key) :] for o in page.get("Contents", [])}
    return sorted(names)


def open_read(uri: str) -> BinaryIO:
    """A readable binary stream (an s3:// object is streamed, not downloaded whole)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    return open(uri, "rb")


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as f:
        return f.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8", errors="replace")


def read_range(uri: str, offset: int, size: int) -> bytes:
    """`size` bytes from `offset`: a ranged GET on S3, a seek locally (a member of a shard without reading it all)."""
    if size <= 0:
        return b""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        rng = f"bytes={offset}-{offset + size - 1}"
        return s3_client().get_object(Bucket=bucket, Key=key, Range=rng)["Body"].read()
    with open(uri, "rb") as f:
        f.seek(offset)
        return f.read(size)


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for any URI; S3 objects are streamed to a temporary file (bounded memory) removed afterwards."""
    if not is_s3(uri):
        yield uri
        return
    bucket, key = split_s3(uri)
    with tempfile.NamedTemporaryFile(suffix=Path(key).suffix) as tmp:
        s3_client().download_fileobj(bucket, key, tmp)
        tmp.flush()
        yield tmp.name


@contextlib.contextmanager
def local_atomic(path: str | Path) -> Iterator[Path]:
    """A temporary file for the block to write, fsynced and renamed onto the local `path` when the block ends without
    error, removed when it raises: nothing half-written is ever seen under `path`. The temporary keeps `path`'s name
    (inside a fresh hidden folder beside it), so writers that record their file's name (torch.save) write the same
    bytes as they would to `path` itself."""
    path = Path(path)
    folder = path.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    tmp = folder / path.name
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().upload_fileobj(io.BytesIO(data), bucket, key)
        return
    with local_atomic(Path(uri)) as tmp:
        tmp.write_bytes(data)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def put_file(local: str | Path, uri: str) -> None:
    """Copy a local file to `uri`, streamed (multipart on S3): for outputs too big to hold in memory."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().upload_file(str(local), bucket, key)
        return
    with local_atomic(Path(uri)) as tmp:
        shutil.copyfile(local, tmp)


def put_dir(local: str | Path, uri: str) -> None:
    """Every file of a local folder under `uri`, each written atomically, in sorted order."""
    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            put_file(path, join(uri, path.relative_to(local).as_posix()))


def get_file(uri: str, local: str | Path) -> None:
    """Copy `uri` to a local path, atomically (a crash leaves no half file under the final name)."""
    target = Path(local)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        with local_atomic(target) as tmp:
            s3_client().download_file(bucket, key, str(tmp))
        return
    with local_atomic(target) as tmp:
        shutil.copyfile(uri, tmp)


def get_dir(uri: str, local: str | Path) -> list[str]:
    """Every file under the folder or prefix `uri` into the local folder `local`; returns the relative paths."""
    root = uri.rstrip("/") + "/" if is_s3(uri) else str(Path(uri).resolve()) + os.sep
    copied = []
    for src, _ in list_files(uri):
        rel = src[len(root) :]
        get_file(src, Path(local, rel))
        copied.append(rel)
    return copied


def delete(uri: str) -> None:
    """One file or object; absent is fine."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


def delete_tree(uri: str) -> None:
    """A folder or prefix and everything under it; absent is fine."""
    if not is_s3(uri):
        shutil.rmtree(uri, ignore_errors=True)
        return
    bucket, key = split_s3(uri.rstrip("/") + "/")
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})


def remove_stale_temporaries(directory: str) -> int:
    """Temporaries left by a killed process (local only: S3 never shows an incomplete upload)."""
    if is_s3(directory) or not Path(directory).exists():
        return 0
    stale = list(Path(directory).rglob(f"{_TEMP_PREFIX}*"))
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(stale)
