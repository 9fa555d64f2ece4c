"""Local paths and s3:// URIs behind one small API. Writes are atomic: a reader never sees half a file.

S3 uses boto3 with the standard AWS environment/config (AWS_ENDPOINT_URL for S3-compatible servers).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
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


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except s3_client().exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def list_files(prefix: str) -> Iterator[tuple[str, int]]:
    """(uri, size) of every file under a directory or s3:// prefix, recursively, in sorted order."""
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


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


def read_range(uri: str, offset: int, size: int) -> bytes:
    """`size` bytes from `offset`: a ranged GET on S3, a seek locally (a member of a shard without reading it all)."""
    if size <= 0:
        return b""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return (
            s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + size - 1}")["Body"].read()
        )
    with open(uri, "rb") as f:
        f.seek(offset)
        return f.read(size)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8", errors="replace")


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for any URI; S3 objects are streamed to a temporary file (bounded memory)."""
    if not is_s3(uri):
        yield uri
        return
    bucket, key = split_s3(uri)
    suffix = Path(key).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        s3_client().download_fileobj(bucket, key, tmp)
        tmp.flush()
        yield tmp.name


def write_bytes(uri: str, data: bytes) -> None:
    """Atomic write: a temporary name renamed into place (local), or a single/multipart upload that
    becomes visible only when complete (S3)."""
    if is_s3(uri):
        import io

        bucket, key = split_s3(uri)
        s3_client().upload_fileobj(io.BytesIO(data), bucket, key)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_file(uri: str, path: str) -> None:
    """Atomic copy of a local file to `uri`, streamed (a multipart upload for S3): for outputs too big to hold."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().upload_file(path, bucket, key)
        return
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
    shutil.copyfile(path, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def remove_stale_temporaries(directory: str) -> int:
    """Temporaries left by a killed run (local only: S3 never shows an incomplete upload)."""
    if is_s3(directory) or not Path(directory).exists():
        return 0
    stale = list(Path(directory).rglob(".tmp-*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
