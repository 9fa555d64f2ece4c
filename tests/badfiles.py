"""Generators of awkward and broken inputs, shared by decode- and pipeline-level tests.

Each returns {filename: expectation}, where expectation is a reject reason (str) or None when the
file must be processed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import DATA


def _speech(sr: int = 16000) -> np.ndarray:
    x, file_sr = sf.read(DATA / "speech" / "wenet__librispeech-1995-1837-0001.wav", dtype="float32")
    import soxr

    return soxr.resample(x, file_sr, sr).astype(np.float32) if sr != file_sr else x


def _mp4(path: Path, with_audio: bool) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=16000) if with_audio else None
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, np.uint8), format="rgb24")
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            x = _speech()
            pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = 16000
            for p in a.encode(frame):
                out.mux(p)
            for p in a.encode():
                out.mux(p)


def make_bad_inputs(root: Path) -> dict[str, str | None]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = _speech()
    exp: dict[str, str | None] = {}

    (root / "zero.wav").write_bytes(b"")
    exp["zero.wav"] = "unreadable_container"
    sf.write(root / "full.flac", x, 16000)
    data = (root / "full.flac").read_bytes()
    (root / "truncated.flac").write_bytes(data[: len(data) // 2])
    (root / "full.flac").unlink()
    exp["truncated.flac"] = None  # the intact half is decoded
    (root / "random.wav").write_bytes(rng.bytes(50_000))
    exp["random.wav"] = "unreadable_container"
    (root / "text.mp3").write_text("this is not audio\n" * 200)
    exp["text.mp3"] = "unreadable_container"
    # a WAV header claiming ~18 hours in front of half a second of samples
    pcm = (x[:8000] * 32767).astype("<i2").tobytes()
    header = (
        b"RIFF"
        + struct.pack("<I", 0x7FFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", 0x7FFFFFF0)
    )
    (root / "lying_header.wav").write_bytes(header + pcm)
    exp["lying_header.wav"] = "segment_too_short"  # 0.5 s of real data, decoded, shorter than segmentation.min_s
    bad = x.copy()
    bad[1000:1100] = np.nan
    bad[5000] = np.inf
    sf.write(root / "nan.wav", bad, 16000, subtype="FLOAT")
    exp["nan.wav"] = "non_finite_samples"
    sf.write(root / "eight_channels.wav", np.stack([x] * 8, axis=1) * 0.5, 16000)
    exp["eight_channels.wav"] = None
    sf.write(root / "8khz.wav", _speech(8000), 8000)
    exp["8khz.wav"] = None
    sf.write(root / "192khz.flac", _speech(192000), 192000)
    exp["192khz.flac"] = None
    sf.write(root / "tenth_second.wav", x[:1600], 16000)
    exp["tenth_second.wav"] = "too_short"
    sf.write(root / "clipped.wav", np.clip(x * 20, -1, 1), 16000)
    exp["clipped.wav"] = None  # decodes; the quality stage judges it
    sf.write(root / "dc_offset.wav", x * 0.5 + 0.4, 16000)
    exp["dc_offset.wav"] = None
    _mp4(root / "video_with_audio.mp4", True)
    exp["video_with_audio.mp4"] = None
    _mp4(root / "video_only.mp4", False)
    exp["video_only.mp4"] = "no_audio_stream"
    sf.write(root / "name with spaces ünïcødé 语音.wav", x, 16000)
    exp["name with spaces ünïcødé 语音.wav"] = None
    return exp


def make_long_silence(root: Path) -> str:
    """Ten minutes of digital silence: an input decoded in several pieces (decode.piece_s), none with speech."""
    sf.write(root / "silence_10min.flac", np.zeros(600 * 8000, np.float32), 8000)
    return "silence_10min.flac"
