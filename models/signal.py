"""Waveform helpers shared by wrappers and curation: mono float32, resampling with soxr."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import soxr

# Called with the calling module's name on every resampling (a call or a stream): how the benchmark checks that
# no audio is resampled twice. Empty in production.
RESAMPLE_LISTENERS: list[Callable[[str], None]] = []


def _announce() -> None:
    if RESAMPLE_LISTENERS:
        frame = sys._getframe(2)
        while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back
        for listener in RESAMPLE_LISTENERS:
            listener(frame.f_globals.get("__name__", "?"))


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32."""
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=1, dtype=np.float32) if x.ndim == 2 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr 'HQ'); a no-op at equal rates."""
    if sr_in == sr_out or x.size == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    _announce()
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(
        np.float32, copy=False
    )


def resample_stream(sr_in: int, sr_out: int) -> soxr.ResampleStream | None:
    """A streaming resampler (soxr 'HQ', mono float32) for audio that arrives in blocks; None at equal rates."""
    if sr_in == sr_out:
        return None
    _announce()
    return soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")


# Effective bandwidth: a frequency band holds content where its loudest moments (95th percentile over frames) rise
# `BAND_MARGIN_DB` above its quietest (10th percentile), or above 16-bit quantisation noise where those are quieter.
# Speech comes and goes; dither, hiss, hum and the empty band above a low-pass are stationary, so a telephone call
# resampled to 44.1 kHz shows no band above 4 kHz whatever noise fills it. Frames more than 60 dB below the loudest
# (digital silence, fades) say nothing and are left out.
BAND_MARGIN_DB = 10.0
_BAND_SMOOTH_HZ = 200.0  # bins averaged, so one frame's noise periodogram varies by ~5 dB, not ~15 dB
_LSB_POWER = (1.0 / 32768.0) ** 2 / 12.0  # per-sample power of 16-bit rounding


def effective_bandwidth_hz(x: np.ndarray, sample_rate: int) -> float | None:
    """The frequency above which `x` holds nothing but stationary noise; None where it is too short (under ~0.1 s)
    or silent to tell."""
    n_fft = 1 << int(round(np.log2(sample_rate * 0.046)))  # ~46 ms: 2048 at 44.1 kHz, 1024 at 16 kHz
    x = np.asarray(x, dtype=np.float32)
    if len(x) < 2 * n_fft:
        return None
    window = np.hanning(n_fft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    energy = power.sum(axis=1)
    if energy.max() <= 0:
        return None
    power = power[energy >= energy.max() * 1e-6]
    if len(power) < 2:
        return None
    width = max(1, int(round(_BAND_SMOOTH_HZ * n_fft / sample_rate)))
    # smooth[:, i]: the mean of bins i .. i + width - 1, summed bin by bin (a running sum would lose the quiet upper
    # band to rounding beside the loud lower one)
    n = power.shape[1] - width + 1
    smooth = sum(power[:, k : k + n] for k in range(width)) / width
    loud = np.percentile(smooth, 95, axis=0)
    floor = np.maximum(np.percentile(smooth, 10, axis=0), _LSB_POWER * float(np.sum(window.astype(np.float64) ** 2)))
    content = np.flatnonzero(loud > floor * 10 ** (BAND_MARGIN_DB / 10))
    if content.size == 0:
        return 0.0
    return float(min((content[-1] + 1) * sample_rate / n_fft, sample_rate / 2))
