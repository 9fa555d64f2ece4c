"""Signal front end of the resemblyzer voice encoder, re-implemented so that the package itself (whose
import pulls in webrtcvad and pkg_resources) is never imported: a 40-band power mel spectrogram with
25 ms windows every 10 ms (librosa's defaults of the time: Slaney mel scale and area normalisation,
periodic Hann window, centred frames with reflect padding), volume raised to -30 dBFS, and long
silences removed by an energy gate standing in for webrtcvad.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
TARGET_DBFS = -30.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters, each scaled to unit area (Slaney normalisation)."""
    fft_hz = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram (not log), frames = 1 + len(wav) // HOP."""
    padded = np.pad(wav.astype(np.float32), N_FFT // 2, mode="reflect" if len(wav) > N_FFT // 2 else "constant")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _WINDOW, axis=1)) ** 2
    return (power @ _FILTERS.T).astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise quiet audio to `target_dbfs` RMS; louder audio is left alone."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 0.0:
        return wav
    gain_db = target_dbfs - 20.0 * np.log10(rms)
    return wav * np.float32(10.0 ** (gain_db / 20.0)) if gain_db > 0 else wav


def frame_levels_db(wav: np.ndarray, frame: int) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames (a partial last frame is dropped)."""
    n = len(wav) // frame
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    power = np.mean(np.square(wav[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    return (10.0 * np.log10(power + 1e-12)).astype(np.float32)


def voiced_frames(levels_db: np.ndarray, dynamic_range_db: float = 35.0, floor_margin_db: float = 8.0) -> np.ndarray:
    """Energy gate: a frame is voiced when it is within `dynamic_range_db` of the loud frames (95th
    percentile) and `floor_margin_db` above the noise floor (10th percentile)."""
    if levels_db.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(np.percentile(levels_db, 95) - dynamic_range_db, np.percentile(levels_db, 10) + floor_margin_db)
    return levels_db > threshold


def trim_long_silences(wav: np.ndarray, window: int = 480, smooth: int = 8, keep: int = 6) -> np.ndarray:
    """Drop silences longer than about `keep` 30 ms windows, as resemblyzer does with webrtcvad."""
    flags = voiced_frames(frame_levels_db(wav, window)).astype(np.float64)
    if not flags.any():
        return wav
    # Moving average then rounding removes isolated flips; dilation keeps short pauses inside speech.
    padded = np.concatenate([np.zeros((smooth - 1) // 2), flags, np.zeros(smooth // 2)])
    mask = np.round(np.convolve(padded, np.ones(smooth) / smooth, mode="valid")).astype(bool)
    # "same" cropped by hand: numpy's returns the kernel's length when the mask is shorter (audio under 0.21 s)
    dilated = np.convolve(mask.astype(np.int32), np.ones(keep + 1, dtype=np.int32), mode="full")
    mask = dilated[keep // 2 : keep // 2 + len(mask)] > 0
    kept = wav[: len(mask) * window][np.repeat(mask, window)]
    return kept if kept.size >= HOP * 20 else wav
