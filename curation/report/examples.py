"""Examples to listen to in the report: a few kept segments per quality band and a few rejected ones per reason, each
with its transcript, scores and reason, so a data engineer hears what a threshold does (as NeMo's Speech Data
Explorer lets one do).

They are picked while finalisation streams the completion records: at most `per_group` per group, the ones whose keys
hash lowest, so the pick is the same whatever order the records come in and memory stays bounded whatever the run's
size. Their audio is then copied into report/audio/: a kept segment's FLAC is read out of its shard (a ranged read at
the offset its completion record gives), a rejected one is decoded from its input's span (its audio went nowhere
else), at most MAX_CLIP_S of it.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import math
import tarfile
from dataclasses import dataclass, field, replace

import storage
from curation.io.audio import decode_span, encode_flac
from schemas.sample import Sample

PER_GROUP = 3
BAND_EDGES = (3.0, 3.5, 4.0)  # on the `overall` quality score (MOS-like, 1-5)
MAX_CLIP_S = 30.0
REJECT_RATE = 16000  # rejected spans are decoded at this rate for listening
AUDIO_DIR = "audio"


def band(overall: float | None) -> str:
    if overall is None:
        return "kept, not scored"
    lo = max((e for e in BAND_EDGES if overall >= e), default=None)
    hi = min((e for e in BAND_EDGES if overall < e), default=None)
    if lo is None:
        return f"kept, overall < {hi:g}"
    return f"kept, overall {lo:g}-{hi:g}" if hi is not None else f"kept, overall >= {lo:g}"


@dataclass(frozen=True)
class Example:
    group: str
    rank: str  # sha256 of the key: the pick order
    key: str
    source_uri: str
    start_s: float | None
    end_s: float | None
    duration_s: float | None
    text: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    reason: str | None = None
    detail: str | None = None
    shard: str | None = None  # kept: the shard holding KEY.flac, and where its bytes are in it
    offset: int | None = None
    size: int | None = None
    audio: str | None = None  # path of the clip relative to report/, once written


def _facts(sample: Sample | None) -> dict:
    if sample is None:
        return {}
    q = sample.quality.dimensions() if sample.quality else {}
    return {
        "text": sample.transcript.render() if sample.transcript else None,
        "scores": {k: round(v, 2) for k, v in q.items()},
        "language": sample.language,
        "duration_s": sample.audio.duration_s,
    }


class ExamplePicker:
    def __init__(self, per_group: int = PER_GROUP):
        self.per_group = per_group
        self.heaps: dict[str, list[tuple[str, str, Example]]] = {}  # group -> max-heap by rank (negated)

    def _offer(self, ex: Example) -> None:
        heap = self.heaps.setdefault(ex.group, [])
        item = (_neg(ex.rank), ex.key, ex)
        if len(heap) < self.per_group:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:  # a lower rank than the worst kept
            heapq.heapreplace(heap, item)

    def add_kept(self, row: dict, sample: Sample) -> None:
        """A manifest row of a completion record (its shard and, when recorded, where KEY.flac lies in it)."""
        self._offer(
            Example(
                group=band(sample.quality.overall if sample.quality else None),
                rank=_rank(sample.key),
                key=sample.key,
                source_uri=sample.source.uri,
                start_s=sample.source.start_s,
                end_s=sample.source.end_s,
                shard=row.get("shard"),
                offset=row.get("flac_offset"),
                size=row.get("flac_size"),
                **_facts(sample),
            )
        )

    def add_reject(self, reject: dict, sample: Sample | None) -> None:
        """A reject dict of a completion record; rejects without a span (whole inputs) have nothing to play."""
        if reject.get("start_s") is None or reject.get("end_s") is None:
            return
        ident = reject.get("key") or f"{reject['input']}@{reject['start_s']}"
        facts = _facts(sample)
        facts.setdefault("duration_s", reject["end_s"] - reject["start_s"])
        self._offer(
            Example(
                group=f"rejected, {reject['stage']} / {reject['reason']}",
                rank=_rank(ident),
                key=reject.get("key") or ident,
                source_uri=reject["input"],
                start_s=reject["start_s"],
                end_s=reject["end_s"],
                reason=reject["reason"],
                detail=reject.get("detail"),
                **facts,
            )
        )

    def examples(self) -> list[Example]:
        """Kept bands first (low to high quality), then rejects by group name; within a group by rank."""

        bands = [band(None), band(-math.inf), *(band(e) for e in BAND_EDGES)]  # low to high quality

        def order(group: str) -> tuple:
            return (group.startswith("rejected"), bands.index(group) if group in bands else 0, group)

        return [
            ex for g in sorted(self.heaps, key=order) for _, _, ex in sorted(self.heaps[g], key=lambda t: t[2].rank)
        ]


def _rank(ident: str) -> str:
    return hashlib.sha256(ident.encode()).hexdigest()


def _neg(rank: str) -> str:
    """A string ordering opposite to `rank` (heapq keeps the smallest on top; we evict the largest rank)."""
    return rank.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))


def _kept_audio(output: str, ex: Example) -> bytes:
    uri = storage.join(output, ex.shard)
    if ex.offset is not None and ex.size is not None:
        return storage.read_range(uri, ex.offset, ex.size)
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(uri))) as tar:  # a record written without offsets
        return tar.extractfile(f"{ex.key}.flac").read()


def _rejected_audio(ex: Example) -> bytes:
    end = min(ex.end_s, ex.start_s + MAX_CLIP_S)
    with storage.local_copy(ex.source_uri) as path:
        x = decode_span(path, REJECT_RATE, ex.start_s, end)
    if not x.size:
        raise ValueError("empty span")
    return encode_flac(x, REJECT_RATE)


def write_examples(output: str, report_dir: str, examples: list[Example]) -> list[Example]:
    """Write each example's clip under report_dir/audio/; an example whose audio cannot be read (a moved input) is
    listed without a player."""
    out = []
    for n, ex in enumerate(examples):
        name = f"{AUDIO_DIR}/{n:03d}_{ex.rank[:12]}.flac"
        try:
            data = _kept_audio(output, ex) if ex.shard else _rejected_audio(ex)
        except Exception:  # the page says so; a report never fails on one clip
            out.append(ex)
            continue
        storage.write_bytes(storage.join(output, report_dir, name), data)
        out.append(replace(ex, audio=name))
    return out
