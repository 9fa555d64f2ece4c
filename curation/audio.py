"""Decoding any supported file to mono float32 at a target rate, streamed so memory stays bounded.

soundfile (libsndfile: wav, flac, ogg/opus, mp3) first; PyAV (ffmpeg: m4a, mp4, mkv, webm, and whatever
libsndfile refuses) as fallback. Resampling with soxr, in a stream. Problems become `DecodeError`s with a
stable reason code, never crashes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from schemas.sample import AudioFacts

BLOCK_FRAMES = 1 << 18


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


class _Sink:
    """Collects mono blocks, resampling on the fly; checks values as they pass."""

    def __init__(self, sr_in: int, sr_out: int, max_frames_out: int):
        self.sr_in = sr_in
        self.stream = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
        self.parts: list[np.ndarray] = []
        self.frames_in = 0
        self.frames_out = 0
        self.max_frames_out = max_frames_out

    def push(self, block: np.ndarray, last: bool = False) -> None:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 2:
            block = block.mean(axis=1, dtype=np.float32)
        if block.size and not np.isfinite(block).all():
            raise DecodeError("non_finite_samples", f"NaN or Inf samples in the block starting at {self.frames_in / self.sr_in:.2f} s")
        self.frames_in += block.size
        out = block if self.stream is None else self.stream.resample_chunk(block, last=last)
        if out.size:
            self.parts.append(np.ascontiguousarray(out, dtype=np.float32))
            self.frames_out += out.size
        if self.frames_out > self.max_frames_out:
            raise DecodeError("too_long", f"more than {self.max_frames_out} samples after decoding")

    def finish(self) -> np.ndarray:
        if self.stream is not None:
            self.push(np.zeros(0, np.float32), last=True)
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def _max_frames(max_s: float, sr: int) -> int:
    return int(max_s * sr) + sr if math.isfinite(max_s) else 1 << 62


PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _header_plausible(f: sf.SoundFile, path: str) -> bool:
    """A PCM header claiming more data than the file holds is lying: decode what is really there."""
    width = PCM_BYTES.get(f.subtype)
    return width is None or f.frames * f.channels * width <= os.path.getsize(path) + 4096


def _decode_soundfile(path: str, sr_out: int, max_s: float) -> Decoded:
    with sf.SoundFile(path) as f:
        sr, channels = f.samplerate, f.channels
        claimed = f.frames / sr if f.frames > 0 else 0.0
        if claimed > max_s and _header_plausible(f, path):
            raise DecodeError("too_long", f"{claimed:.0f} s > max {max_s:.0f} s")
        sink = _Sink(sr, sr_out, _max_frames(max_s, sr_out))
        for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
            sink.push(block)
        audio = sink.finish()
        fmt = f.format
    return Decoded(audio, sr_out, AudioFacts(sample_rate=sr, channels=channels, duration_s=sink.frames_in / sr, format=fmt))


def _decode_pyav(path: str, sr_out: int, max_s: float) -> Decoded:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DecodeError("unreadable_container", str(exc)[:300]) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise DecodeError("no_audio_stream", f"container {container.format.name} has no audio track")
        stream = streams[0]
        sr, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        if not sr:
            raise DecodeError("unreadable_container", "audio stream without a sample rate")
        sink = _Sink(sr, sr_out, _max_frames(max_s, sr_out))
        try:
            for frame in container.decode(stream):
                raw = frame.to_ndarray()
                block = raw.astype(np.float32)
                if np.issubdtype(raw.dtype, np.integer):
                    block /= float(np.iinfo(raw.dtype).max)
                # planar (channels, n) or packed (1, n*channels): make (n, channels)
                sink.push(block.T if frame.format.is_planar else block.reshape(-1, channels))
        except av.error.FFmpegError as exc:
            if sink.frames_in == 0:
                raise DecodeError("decode_failed", str(exc)[:300]) from exc
            # A truncated tail: keep what decoded cleanly (lossless prefix of a damaged file).
        audio = sink.finish()
        fmt = container.format.name
    return Decoded(audio, sr_out, AudioFacts(sample_rate=sr, channels=channels, duration_s=sink.frames_in / sr, format=fmt))


def decode_file(path: str, sample_rate: int, max_duration_s: float = math.inf) -> Decoded:
    """Decode a local file to mono float32 at `sample_rate`. Raises DecodeError with a reason code."""
    try:
        decoded = _decode_soundfile(path, sample_rate, max_duration_s)
    except DecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        decoded = _decode_pyav(path, sample_rate, max_duration_s)
    if decoded.audio.size == 0:
        raise DecodeError("empty_audio", "no samples decoded")
    return decoded
