"""Finding the inputs of a run: a directory (recursive), an s3:// prefix, or a JSONL/Parquet manifest.

A `.txt` or `.lab` file beside an audio file (same stem) is its sidecar transcript; a manifest may carry
`text`, `speaker` and `language` columns instead.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import storage

SIDECAR_EXTENSIONS = (".lab", ".txt")


class IngestError(ValueError):
    """The input location itself is unusable (a configuration error, not a bad file)."""


def _stem(uri: str) -> str:
    return uri.rsplit(".", 1)[0] if "." in posixpath.basename(uri) else uri


def _from_listing(prefix: str, extensions: list[str]) -> list[dict]:
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    files = list(storage.list_files(prefix))
    names = {uri for uri, _ in files}
    items = []
    for uri, size in files:
        if posixpath.splitext(uri)[1].lower() not in exts:
            continue
        item = {"uri": uri, "size": size}
        for ext in SIDECAR_EXTENSIONS:
            if _stem(uri) + ext in names:
                item["sidecar_uri"] = _stem(uri) + ext
                break
        items.append(item)
    return items


def _from_manifest(path: str) -> list[dict]:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with storage.local_copy(path) as local:
            rows = pq.read_table(local).to_pylist()
    else:
        rows = [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]
    base = path.rsplit("/", 1)[0] if storage.is_s3(path) else str(Path(path).resolve().parent)
    items = []
    for n, row in enumerate(rows):
        uri = row.get("uri")
        if not isinstance(uri, str) or not uri:
            raise IngestError(f"manifest {path}: row {n} has no 'uri' string")
        if not storage.is_s3(uri) and not Path(uri).is_absolute():
            uri = storage.join(base, uri)
        item = {"uri": storage.normalize(uri)}
        item.update({k: str(row[k]) for k in ("text", "speaker", "language") if row.get(k) is not None})
        items.append(item)
    return items


def list_inputs(input_uri: str, extensions: list[str]) -> list[dict]:
    """Input items sorted by URI, deduplicated: {'uri', 'size'?, 'sidecar_uri'?, 'text'?, 'speaker'?, 'language'?}."""
    if input_uri.endswith((".jsonl", ".json", ".parquet")):
        items = _from_manifest(input_uri if storage.is_s3(input_uri) else storage.normalize(input_uri))
    elif storage.is_s3(input_uri):
        items = _from_listing(input_uri, extensions)
    else:
        root = Path(input_uri).expanduser()
        if root.is_file():
            items = [{"uri": storage.normalize(str(root)), "size": root.stat().st_size}]
        elif root.is_dir():
            items = _from_listing(str(root.resolve()), extensions)
        else:
            raise IngestError(f"input {input_uri!r} does not exist")
    unique = {item["uri"]: item for item in items}
    if not unique:
        raise IngestError(f"no inputs with extensions {extensions} under {input_uri!r}")
    return [unique[u] for u in sorted(unique)]
