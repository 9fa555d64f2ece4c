"""Audio for codec training: clips from curated shards or folders, resampled once, cut into random crops.

Sources (data.sources): WebDataset tar shards (local or s3://; their `KEY.flac`, the full-band audio curation keeps),
a curation run's index.json (its shards), or local folders of audio files (key = the path inside the folder).
Every clip is decoded once (soundfile), mixed to mono, resampled to the codec's rate (soxr) and appended to one
float32 file in a local temporary folder, memory-mapped: crops read slices of it, with no decoding in the loop.
A clip that does not decode is skipped and counted by reason; no clip at all stops the run.

Held out: the `heldout_clips` clips first in the order of sha256(key); the same keys whatever the sources' order.
Crops: crop j of step s is drawn by a generator seeded by (seed, s, j): a clip with probability proportional to
its length (every second of audio is as likely), then a uniform start. Crops are thus a function of the step, not of
a stream's position: resuming at step s gives the crops an uninterrupted run would have seen, and rank r of W takes
crops [r B / W, (r + 1) B / W) of the global batch, the same crops one process takes whatever the world size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

import storage
from models.signal import resample, to_mono

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


class CodecDataError(ValueError):
    """Sources that cannot be read or hold no usable audio; the message is one line naming the source."""


def _index_shards(index: str) -> list[str]:
    try:
        urls = [entry["url"] for entry in json.loads(storage.read_bytes(index))["shardlist"]]
    except Exception as exc:  # missing, not JSON, not the wids layout
        raise CodecDataError(
            f"data.sources: {index}: not a readable index.json ({type(exc).__name__}: {exc})"
        ) from None
    base = index.rsplit("/", 1)[0] if "/" in index else "."
    return [u if u.startswith("s3://") or os.path.isabs(u) else f"{base}/{u}" for u in urls]


def _decode(data: bytes, sample_rate: int) -> np.ndarray:
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if audio.size == 0:
        raise ValueError("no samples")
    return resample(to_mono(audio), rate, sample_rate).astype(np.float32)


def _shard_clips(url: str):
    """(key, flac bytes) of a tar shard."""
    from webdataset.tariterators import tar_file_iterator

    try:
        with storage.open_read(url) as stream:
            for member in tar_file_iterator(stream, select_files=lambda name: name.endswith(".flac")):
                yield member["fname"].rsplit(".", 1)[0], member["data"]
    except Exception as exc:  # unreachable, truncated or not a tar: its audio would be missing
        raise CodecDataError(f"data.sources: shard {url}: {type(exc).__name__}: {exc}") from None


def _folder_clips(folder: Path):
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        yield str(path.relative_to(folder)), path.read_bytes()


def encoded_clips(sources: list[str]):
    """(key, encoded audio bytes) of every source, in the sources' order."""
    for source in sources:
        if source.endswith(".json"):
            for url in _index_shards(source):
                yield from _shard_clips(url)
        elif source.endswith(".tar") or storage.is_s3(source):
            yield from _shard_clips(source)
        elif Path(source).is_dir():
            yield from _folder_clips(Path(source))
        else:
            raise CodecDataError(
                f"data.sources: {source} is not a .tar shard, an index.json or a local folder of audio files"
            )


@dataclass
class ClipSet:
    """Clips at one sample rate, memory-mapped: clip i is audio[starts[i] : starts[i] + lengths[i]]."""

    keys: list[str]
    starts: np.ndarray
    lengths: np.ndarray
    audio: np.ndarray
    skipped: Counter = field(default_factory=Counter)

    def clip(self, i: int) -> np.ndarray:
        return self.audio[self.starts[i] : self.starts[i] + self.lengths[i]]

    def subset(self, indices: list[int]) -> ClipSet:
        return ClipSet(
            [self.keys[i] for i in indices], self.starts[indices], self.lengths[indices], self.audio, self.skipped
        )


def read_clips(sources: list[str], sample_rate: int, folder: str | None = None) -> ClipSet:
    """Decode every clip once into a float32 file in `folder` (default: a new temporary one), memory-mapped."""
    folder = Path(folder or tempfile.mkdtemp(prefix="s2-codec-clips-"))
    path = folder / "clips.f32"
    keys, lengths, skipped = [], [], Counter()
    with open(path, "wb") as f:
        for key, data in encoded_clips(sources):
            try:
                audio = _decode(data, sample_rate)
            except Exception:  # not audio soundfile reads, or empty: a reject, not a crash
                skipped["skipped_undecodable"] += 1
                continue
            f.write(audio.tobytes())
            keys.append(key)
            lengths.append(audio.size)
    if not keys:
        raise CodecDataError(f"data.sources {sources}: no decodable audio ({dict(skipped) or 'no audio files'})")
    lengths = np.array(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return ClipSet(keys, starts, lengths, np.memmap(path, dtype=np.float32, mode="r"), skipped)


def split(clips: ClipSet, heldout: int) -> tuple[ClipSet, ClipSet]:
    """(training clips, held-out clips): the held out are the first `heldout` by sha256 of their key."""
    order = sorted(range(len(clips.keys)), key=lambda i: hashlib.sha256(clips.keys[i].encode()).hexdigest())
    held = sorted(order[:heldout])
    train = sorted(order[heldout:])
    if not train:
        raise CodecDataError(
            f"data.heldout_clips {heldout}: the sources hold {len(clips.keys)} clips, none left to train on"
        )
    return clips.subset(train), clips.subset(held)


def crop_length(seconds: float, sample_rate: int, frame_length: int) -> int:
    """Samples of a crop: `seconds` rounded down to whole code frames, at least one frame."""
    return max(1, int(seconds * sample_rate) // frame_length) * frame_length


def crops(clips: ClipSet, step: int, indices: range, length: int, seed: int) -> np.ndarray:
    """Crops `indices` of the global batch of `step`: [len(indices), length] float32, zero-padded past a clip's end."""
    weights = clips.lengths / clips.lengths.sum()
    out = np.zeros((len(indices), length), dtype=np.float32)
    for row, j in enumerate(indices):
        rng = np.random.default_rng([seed, step, j])
        i = int(rng.choice(len(clips.keys), p=weights))
        start = int(rng.integers(0, max(1, clips.lengths[i] - length + 1)))
        piece = clips.clip(i)[start : start + length]
        out[row, : piece.size] = piece
    return out
