"""Overlapped speech (two voices at once) in one segment, by a second-voice pitch test (harmonic cancellation, after
de Cheveigné): in each 10 ms frame of loud speech, the period that best explains the frame is cancelled (x[n] - x[n+T]);
one voice leaves an aperiodic residual, two voices leave the second voice's periodicity. A frame is overlapped when
no single period explains it (`min_single_aperiodicity`) and its residual is periodic (`max_residual_aperiodicity`),
over at least `min_run_s`.

Measured against the AMI RTTM with `python -m scripts.bench_speakers --parts overlap`: on real meeting audio the
test is weak (see the README's Performance table), so `transcription.max_overlap_s` is off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.policy.diarization import FRAME_S, speech_frames
from models.signal import resample

RATE = 16000
HOP = int(RATE * FRAME_S)  # one decision per 10 ms speech frame
WINDOW = 480  # 30 ms: two periods of a 66 Hz voice
MIN_LAG, MAX_LAG = 40, 320  # voice pitch 50-400 Hz at 16 kHz
_CHUNK = 512  # frames analysed at once: bounds memory on long segments


@dataclass(frozen=True)
class OverlapParams:
    min_single_aperiodicity: float = 0.2  # YIN's normalised difference at the best period: ~0 for one clean voice
    max_residual_aperiodicity: float = 0.3  # the same after cancelling that period: low when a second voice remains
    loud_db: float = 20.0  # frames within this of the segment's loud speech (95th percentile) are tested
    min_run_s: float = 0.1  # shorter runs of overlapped frames are ignored


def _aperiodicity(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN's cumulative-mean-normalised difference of each frame's first WINDOW samples against its lags
    MIN_LAG..MAX_LAG: (its minimum, the lag of that minimum). `frames` is (n, WINDOW + MAX_LAG)."""
    n_fft = 1 << int(np.ceil(np.log2(frames.shape[1] + WINDOW)))
    head = frames[:, :WINDOW]
    cross = np.fft.irfft(np.conj(np.fft.rfft(head, n_fft)) * np.fft.rfft(frames, n_fft), n_fft)[:, : MAX_LAG + 1]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lagged = energy[:, WINDOW : WINDOW + MAX_LAG + 1] - energy[:, : MAX_LAG + 1]
    diff = np.maximum(lagged[:, :1] + lagged - 2 * cross, 0.0)[:, 1:]
    cmnd = diff / np.maximum(np.cumsum(diff, axis=1) / np.arange(1, MAX_LAG + 1), 1e-12)
    cmnd = cmnd[:, MIN_LAG - 1 :]
    best = np.argmin(cmnd, axis=1)
    return cmnd[np.arange(len(cmnd)), best], best + MIN_LAG


def overlap_frames(wav: np.ndarray, sample_rate: int, params: OverlapParams = OverlapParams()) -> np.ndarray:
    """Boolean mask, one value per 10 ms frame (as curation.policy.diarization.speech_frames), of overlapped speech."""
    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, RATE).astype(np.float64)
    speech = speech_frames(x, RATE)
    span = WINDOW + 2 * MAX_LAG  # a frame, its lags, and its residual's lags
    n = min(len(speech), max(0, (len(x) - span) // HOP + 1))
    out = np.zeros(len(speech), dtype=bool)
    if n == 0:
        return out
    idx = np.arange(span)[None, :] + HOP * np.arange(n)[:, None]
    level = 10 * np.log10(np.mean(x[idx[:, :WINDOW]] ** 2, axis=1) + 1e-12)
    loud = (
        speech[:n] & (level > np.percentile(level[speech[:n]], 95) - params.loud_db) if speech[:n].any() else speech[:n]
    )
    tested = np.flatnonzero(loud)
    flags = np.zeros(n, dtype=bool)
    for k in range(0, len(tested), _CHUNK):
        rows = tested[k : k + _CHUNK]
        frames = x[idx[rows]]
        single, lag = _aperiodicity(frames[:, : WINDOW + MAX_LAG])
        ahead = np.arange(WINDOW + MAX_LAG)[None, :] + lag[:, None]
        residual = frames[:, : WINDOW + MAX_LAG] - np.take_along_axis(frames, ahead, axis=1)
        second, _ = _aperiodicity(residual)
        flags[rows] = (single > params.min_single_aperiodicity) & (second < params.max_residual_aperiodicity)
    # frame k covers samples from k * HOP; its decision belongs to the 10 ms frame at its window's centre
    shift = WINDOW // 2 // HOP
    out[shift : shift + n] = flags[: len(out) - shift]
    min_run = int(round(params.min_run_s / FRAME_S))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], out.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < min_run:
            out[a:b] = False
    return out


def overlap_seconds(wav: np.ndarray, sample_rate: int, params: OverlapParams = OverlapParams()) -> float:
    """Seconds of overlapped speech in the segment."""
    return round(float(overlap_frames(wav, sample_rate, params).sum()) * FRAME_S, 3)
