"""Deterministic keys: 16 hex chars of the source URI's SHA-256, then the segment index.

No dots (WebDataset splits extensions on them) and no leading underscore.
"""

from __future__ import annotations

import hashlib
import re

KEY_RE = re.compile(r"^[0-9a-f]{16}(_[0-9]{5})?$")


def source_key(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]


def segment_key(uri: str, index: int) -> str:
    if not 0 <= index < 100_000:
        raise ValueError(f"segment index {index} out of range")
    return f"{source_key(uri)}_{index:05d}"


def shard_name(unit: int, part: int) -> str:
    return f"shard-{unit:06d}-{part:03d}.tar"
