"""Decoding any supported file to mono float32 at a target rate, as a stream of blocks.

soundfile (libsndfile: wav, flac, ogg/opus, mp3) first; PyAV (ffmpeg: m4a, mp4, mkv, webm, and whatever
libsndfile refuses) as fallback. Resampling with soxr, in a stream. Long inputs are cut into pieces at
quiet points (`iter_pieces`), so memory is bounded by the piece length, not the file's. Problems become
`DecodeError`s with a stable reason code, never crashes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from models.signal import resample_stream
from schemas.config import PIECE_SEARCH_S
from schemas.sample import AudioFacts

BLOCK_FRAMES = 1 << 14  # small enough that a damaged tail loses little
PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


class DecodeError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Decoded:
    audio: np.ndarray  # mono float32 at sample_rate
    sample_rate: int
    facts: AudioFacts  # the source file's own facts


class _Resampler:
    """Mono, resampled blocks out of any blocks in; checks values and length as they pass."""

    def __init__(self, sr_in: int, sr_out: int, max_s: float):
        self.sr_in, self.sr_out = sr_in, sr_out
        self.stream = resample_stream(sr_in, sr_out)
        self.frames_in = 0
        self.max_frames_in = int(max_s * sr_in) + sr_in if math.isfinite(max_s) else 1 << 62

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 2:
            block = block.mean(axis=1, dtype=np.float32)
        if block.size and not np.isfinite(block).all():
            raise DecodeError(
                "non_finite_samples", f"NaN or Inf samples in the block starting at {self.frames_in / self.sr_in:.2f} s"
            )
        self.frames_in += block.size
        if self.frames_in > self.max_frames_in:
            raise DecodeError("too_long", f"more than {self.max_frames_in / self.sr_in:.0f} s of audio")
        out = block if self.stream is None else self.stream.resample_chunk(block, last=last)
        return np.ascontiguousarray(out, dtype=np.float32)


def _header_plausible(f: sf.SoundFile, path: str) -> bool:
    """A PCM header claiming more data than the file holds is lying: decode what is really there."""
    width = PCM_BYTES.get(f.subtype)
    return width is None or f.frames * f.channels * width <= os.path.getsize(path) + 4096


def _rate_out(sr_in: int, sr_out: int, upsample: bool) -> int:
    return sr_out if upsample else min(sr_in, sr_out)


def _stream_soundfile(
    path: str, sr_out: int, max_s: float, upsample: bool
) -> tuple[AudioFacts, Iterator[np.ndarray], _Resampler]:
    f = sf.SoundFile(path)
    claimed = f.frames / f.samplerate if f.frames > 0 else 0.0
    if claimed > max_s and _header_plausible(f, path):
        f.close()
        raise DecodeError("too_long", f"{claimed:.0f} s > max {max_s:.0f} s")
    facts = AudioFacts(sample_rate=f.samplerate, channels=f.channels, duration_s=claimed, format=f.format)
    rs = _Resampler(f.samplerate, _rate_out(f.samplerate, sr_out, upsample), max_s)

    def blocks() -> Iterator[np.ndarray]:
        with f:
            try:
                for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                    yield rs.push(block)
            except sf.LibsndfileError as exc:
                if rs.frames_in == 0:
                    raise DecodeError("decode_failed", str(exc)[:300]) from exc
                # a damaged tail: keep what decoded cleanly before it
        yield rs.push(np.zeros(0, np.float32), last=True)

    return facts, blocks(), rs


def _stream_pyav(
    path: str, sr_out: int, max_s: float, upsample: bool
) -> tuple[AudioFacts, Iterator[np.ndarray], _Resampler]:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DecodeError("unreadable_container", str(exc)[:300]) from exc
    if not container.streams.audio:
        name = container.format.name
        container.close()
        raise DecodeError("no_audio_stream", f"container {name} has no audio track")
    stream = container.streams.audio[0]
    sr, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if not sr:
        container.close()
        raise DecodeError("unreadable_container", "audio stream without a sample rate")
    duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
    facts = AudioFacts(sample_rate=sr, channels=channels, duration_s=duration, format=container.format.name)
    rs = _Resampler(sr, _rate_out(sr, sr_out, upsample), max_s)

    def blocks() -> Iterator[np.ndarray]:
        with container:
            try:
                for frame in container.decode(stream):
                    raw = frame.to_ndarray()
                    block = raw.astype(np.float32)
                    if np.issubdtype(raw.dtype, np.integer):
                        block /= float(np.iinfo(raw.dtype).max)
                    # planar (channels, n) or packed (1, n*channels): make (n, channels)
                    yield rs.push(block.T if frame.format.is_planar else block.reshape(-1, channels))
            except av.error.FFmpegError as exc:
                if rs.frames_in == 0:
                    raise DecodeError("decode_failed", str(exc)[:300]) from exc
                # a damaged tail: keep what decoded cleanly before it
        yield rs.push(np.zeros(0, np.float32), last=True)

    return facts, blocks(), rs


def open_stream(
    path: str, sample_rate: int, max_duration_s: float = math.inf, upsample: bool = True
) -> tuple[AudioFacts, Iterator[np.ndarray], _Resampler]:
    """(header facts, blocks of mono float32, resampler whose frames_in counts source frames). The blocks are
    at `sample_rate`, or with `upsample=False` at the source's own rate when that is lower (rs.sr_out)."""
    try:
        return _stream_soundfile(path, sample_rate, max_duration_s, upsample)
    except DecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return _stream_pyav(path, sample_rate, max_duration_s, upsample)


def _quietest(x: np.ndarray, sample_rate: int) -> int:
    """Index of the start of the quietest 50 ms window in x."""
    win = max(sample_rate // 20, 1)
    n = len(x) // win
    if n == 0:
        return len(x)
    energy = (x[: n * win].reshape(n, win) ** 2).mean(axis=1)
    return int(np.argmin(energy)) * win + win // 2


def iter_pieces(
    blocks: Iterator[np.ndarray], sample_rate: int, piece_s: float, search_s: float = PIECE_SEARCH_S
) -> Iterator[tuple[int, np.ndarray, bool]]:
    """(offset in samples, audio, last) pieces of about piece_s, each cut at the quietest point of the last
    `search_s` before the limit, so an utterance is rarely split by a cut.

    Blocks are copied into one buffer, grown by doubling and reused for every piece, so a long input costs
    one piece of memory here. A piece is a view of that buffer: use it before asking for the next. A piece
    is cut only with audio behind it, so all but the final one are known not to be last."""
    limit, search = int(piece_s * sample_rate), int(min(search_s, piece_s / 2) * sample_rate)
    buf = np.empty(0, np.float32)
    filled = offset = 0
    for block in blocks:
        if filled + block.size > buf.size:
            grown = np.empty(max(filled + block.size, 2 * buf.size), np.float32)
            grown[:filled] = buf[:filled]
            buf = grown
        buf[filled : filled + block.size] = block
        filled += block.size
        while filled >= limit + search:
            cut = limit - search + _quietest(buf[limit - search : limit], sample_rate)
            yield offset, buf[:cut], False
            offset += cut
            buf[: filled - cut] = buf[cut:filled]
            filled -= cut
    if filled:
        yield offset, buf[:filled], True


def decode_file(path: str, sample_rate: int, max_duration_s: float = math.inf) -> Decoded:
    """Decode a whole local file to mono float32 at `sample_rate`. Raises DecodeError with a reason code."""
    facts, blocks, rs = open_stream(path, sample_rate, max_duration_s)
    parts = [b for b in blocks if b.size]
    if not parts:
        raise DecodeError("empty_audio", "no samples decoded")
    audio = np.concatenate(parts)
    return Decoded(audio, sample_rate, facts.model_copy(update={"duration_s": rs.frames_in / facts.sample_rate}))


def decode_span(path: str, sample_rate: int, start_s: float, end_s: float) -> np.ndarray:
    """[start_s, end_s) of a local file as mono float32 at `sample_rate`, decoded as a stream: a span of a long input
    costs the span's memory only."""
    _, blocks, _ = open_stream(path, sample_rate)
    a, b = int(round(start_s * sample_rate)), int(round(end_s * sample_rate))
    parts, pos = [], 0
    for block in blocks:
        lo, hi = max(a - pos, 0), min(b - pos, block.size)
        if hi > lo:
            parts.append(block[lo:hi].copy())
        pos += block.size
        if pos >= b:
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def encode_flac(x: np.ndarray, sample_rate: int) -> bytes:
    """16-bit FLAC bytes: int16 samples are written as they are; floats are clipped to [-1, 1]."""
    buf = io.BytesIO()
    sf.write(buf, x if x.dtype == np.int16 else np.clip(x, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()
