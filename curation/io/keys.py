"""Deterministic keys: 16 hex chars of the source URI's SHA-256, then the segment index.

No dots (WebDataset splits extensions on them) and no leading underscore.
"""

from __future__ import annotations

import hashlib
import re

from schemas.config import SEGMENT_DIGITS

KEY_RE = re.compile(rf"^[0-9a-f]{{16}}(_[0-9]{{{SEGMENT_DIGITS}}})?$")


def source_key(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]


def segment_key(uri: str, index: int) -> str:
    if not 0 <= index < 10**SEGMENT_DIGITS:
        raise ValueError(f"segment index {index} out of range")  # the settings are checked against it at start
    return f"{source_key(uri)}_{index:0{SEGMENT_DIGITS}d}"


def shard_name(unit: int, part: int) -> str:
    return f"shard-{unit:06d}-{part:03d}.tar"
