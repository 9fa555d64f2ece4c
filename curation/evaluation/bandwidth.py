"""Measuring the bandwidth estimate (models.signal.effective_bandwidth_hz): a clip low-passed at a known frequency,
taken to a full-band rate and written as 16-bit with dither, as audio narrowed upstream reaches the pipeline."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from models.signal import effective_bandwidth_hz, resample

FULL_BAND_RATE = 44100
# a steep low-pass (Kaiser FIR, ~150 Hz transition, ~100 dB stop band): the band ends where it says, as an upstream
# resampler's or codec's does
_TAPS, _KAISER_BETA = 2001, 10.0


def narrowed(x: np.ndarray, sample_rate: int, cutoff_hz: float, seed: int = 0) -> np.ndarray:
    """`x` low-passed at `cutoff_hz`, resampled to 44.1 kHz and rounded to 16 bits with triangular dither (seeded)."""
    y = resample(np.asarray(x, dtype=np.float32), sample_rate, FULL_BAND_RATE).astype(np.float64)
    y = sps.fftconvolve(y, sps.firwin(_TAPS, cutoff_hz, window=("kaiser", _KAISER_BETA), fs=FULL_BAND_RATE), "same")
    rng = np.random.default_rng(seed)
    lsb = 1.0 / 32768.0
    y = y + (rng.random(len(y)) - rng.random(len(y))) * lsb
    return (np.round(y / lsb) * lsb).astype(np.float32)


def bandwidth_errors(
    clips: dict[str, tuple[np.ndarray, int]], cutoffs_hz: tuple[float, ...], min_margin: float = 1.1
) -> list[dict]:
    """For each clip and cutoff: the estimate on the narrowed clip and its relative error against the cutoff. A clip
    whose own band (estimated on it as given) is not `min_margin` x above a cutoff cannot be narrowed to it: that row
    says so (`own_band_hz`) and has no error."""
    rows = []
    for name, (x, rate) in clips.items():
        own = effective_bandwidth_hz(x, rate)
        for k, cutoff in enumerate(cutoffs_hz):
            row = {"clip": name, "cutoff_hz": cutoff, "own_band_hz": own, "estimate_hz": None, "error": None}
            if own is not None and own >= min_margin * cutoff:
                est = effective_bandwidth_hz(narrowed(x, rate, cutoff, seed=k), FULL_BAND_RATE)
                row.update(estimate_hz=est, error=None if est is None else (est - cutoff) / cutoff)
            rows.append(row)
    return rows
