"""Waveform helpers shared by wrappers and curation: mono float32, resampling with soxr."""

from __future__ import annotations

import numpy as np
import soxr


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32."""
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=1, dtype=np.float32) if x.ndim == 2 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr 'HQ'); a no-op at equal rates."""
    if sr_in == sr_out or x.size == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
