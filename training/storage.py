"""Local paths and s3:// URIs alike, for the few things training reads and writes.

S3 goes through boto3 with the standard AWS environment (AWS_ENDPOINT_URL for S3-compatible stores). An object
becomes visible only when its upload is complete, so a single put or upload is atomic; locally, files are written
under a temporary name and renamed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if is_s3(base) else str(Path(base, *parts))


def _client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def open_read(uri: str):
    """A readable binary stream (an s3:// object is streamed, not downloaded whole)."""
    if is_s3(uri):
        bucket, key = _split(uri)
        return _client().get_object(Bucket=bucket, Key=key)["Body"]
    return open(uri, "rb")


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return os.path.exists(uri)
    bucket, key = _split(uri)
    listed = _client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(o["Key"] == key for o in listed.get("Contents", []))


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        _client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def upload_file(local: str | Path, uri: str) -> None:
    """Copy a local file to `uri` (multipart for large files on S3; visible only once complete)."""
    if is_s3(uri):
        bucket, key = _split(uri)
        _client().upload_file(str(local), bucket, key)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.copyfile(local, tmp)
    os.replace(tmp, path)


def download_file(uri: str, local: str | Path) -> None:
    bucket, key = _split(uri)
    _client().download_file(bucket, key, str(local))


def upload_dir(local: str | Path, uri: str) -> None:
    """Every file of a local folder under the prefix `uri` (S3 only; a local `uri` is written in place)."""
    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            upload_file(path, join(uri, str(path.relative_to(local))))


def list_names(uri: str) -> list[str]:
    """Names directly below a folder or prefix."""
    if not is_s3(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    bucket, key = _split(uri.rstrip("/") + "/")
    pages = _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, Delimiter="/")
    names = set()
    for page in pages:
        names |= {p["Prefix"][len(key) :].rstrip("/") for p in page.get("CommonPrefixes", [])}
        names |= {o["Key"][len(key) :] for o in page.get("Contents", [])}
    return sorted(names)


def remove_tree(uri: str) -> None:
    if not is_s3(uri):
        shutil.rmtree(uri, ignore_errors=True)
        return
    bucket, key = _split(uri.rstrip("/") + "/")
    client = _client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
