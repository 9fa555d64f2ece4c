"""Label bootstrapping for the quality head: degrade clean speech in controlled ways and derive the labels.

Each degradation has one physical parameter, turned into a severity s in [0, 1]:

  kind            parameter                         severity
  noise           SNR in dB (whole-clip power)      (30 - snr) / 35          30 dB -> 0, 0 dB -> 0.86, -5 dB -> 1
  clipping        fraction of samples clipped, q    sqrt(q / 0.1)            1% -> 0.32, 10% -> 1
  bandlimit       low-pass cutoff (Hz)              log2(nyquist / cutoff) / 3   nyquist/2 -> 0.33, /8 -> 1
  reverb          RT60 (s), direct/reverb 0 dB      (rt60 - 0.1) / 0.9       0.3 s -> 0.22, 1.0 s -> 1
  codec           bitrate (kbit/s)                  log2(transparent / kbps) / 2  (transparent: opus 24, mp3 48)
  second_speaker  speech-to-interferer ratio (dB)   (25 - sir) / 25          20 dB -> 0.2, 0 dB -> 1

(all clipped to [0, 1]). Labels are MOS-like on 1-5: label = 5 - 4 x penalty, where one degradation's penalty
on a dimension is weight x severity and several combine like independent losses, 1 - prod(1 - w_k s_k) (two
moderate degradations do not add up to a total loss; one at full strength with weight 1 does). The clean clip
is 5 everywhere. The weights say which dimensions a degradation is about (a second speaker hurts
speaker_consistency fully and recording quality not at all); `overall` has its own weights. Everything is
deterministic given the seed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import av
import numpy as np
from scipy import signal as sps

from models.signal import resample
from schemas.quality import QUALITY_DIMENSIONS

KINDS = ("noise", "clipping", "bandlimit", "reverb", "codec", "second_speaker")

# How much a degradation at full severity lowers each dimension (x 4 MOS points).
WEIGHTS: dict[str, dict[str, float]] = {
    "noise": {"overall": 1.0, "snr": 1.0, "speaker_consistency": 0.0, "recording_quality": 0.2, "intelligibility": 0.6},
    "clipping": {
        "overall": 0.8,
        "snr": 0.0,
        "speaker_consistency": 0.0,
        "recording_quality": 1.0,
        "intelligibility": 0.3,
    },
    "bandlimit": {
        "overall": 0.7,
        "snr": 0.0,
        "speaker_consistency": 0.0,
        "recording_quality": 1.0,
        "intelligibility": 0.4,
    },
    "reverb": {
        "overall": 0.8,
        "snr": 0.2,
        "speaker_consistency": 0.0,
        "recording_quality": 0.8,
        "intelligibility": 0.6,
    },
    "codec": {"overall": 0.6, "snr": 0.0, "speaker_consistency": 0.0, "recording_quality": 0.8, "intelligibility": 0.2},
    "second_speaker": {
        "overall": 1.0,
        "snr": 0.3,
        "speaker_consistency": 1.0,
        "recording_quality": 0.0,
        "intelligibility": 0.6,
    },
}
TRANSPARENT_KBPS = {"opus": 24.0, "mp3": 48.0}
_CODECS = {"opus": ("libopus", "ogg"), "mp3": ("libmp3lame", "mp3")}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


@dataclass(frozen=True)
class Applied:
    """One degradation as applied: its kind, its parameters and the severity they imply."""

    kind: str
    params: dict[str, float | str]
    severity: float


@dataclass
class Degraded:
    audio: np.ndarray
    applied: list[Applied] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, float]:
        return labels_for(self.applied)


def labels_for(applied: Sequence[Applied]) -> dict[str, float]:
    """Per-dimension labels (1-5) implied by a list of applied degradations."""
    return {
        d: 5.0 - 4.0 * (1.0 - float(np.prod([1.0 - WEIGHTS[a.kind][d] * a.severity for a in applied])))
        for d in QUALITY_DIMENSIONS
    }


def _severity(value: float) -> float:
    return float(np.clip(value, 0.0, 1.0))


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _loop_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of x, repeated as needed, from a random start."""
    start = int(rng.integers(0, x.size))
    return np.resize(np.roll(x, -start), n)


def _mix(x: np.ndarray, other: np.ndarray, ratio_db: float, rng: np.random.Generator) -> np.ndarray:
    other = _loop_to(other, x.size, rng)
    p_x, p_o = _power(x), _power(other)
    if p_o == 0.0:
        return x.copy()
    gain = np.sqrt(p_x / (p_o * 10.0 ** (ratio_db / 10.0)))
    return (x + gain * other).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> Degraded:
    """Noise (looped from a random offset) at a whole-clip SNR of snr_db."""
    return Degraded(
        _mix(x, noise, snr_db, rng), [Applied("noise", {"snr_db": snr_db}, _severity((30.0 - snr_db) / 35.0))]
    )


def add_speaker(x: np.ndarray, other: np.ndarray, sir_db: float, rng: np.random.Generator) -> Degraded:
    """A second talker (another clip, looped from a random offset) at speech-to-interferer ratio sir_db."""
    return Degraded(
        _mix(x, other, sir_db, rng), [Applied("second_speaker", {"sir_db": sir_db}, _severity((25.0 - sir_db) / 25.0))]
    )


def clip(x: np.ndarray, fraction: float) -> Degraded:
    """Clip the loudest `fraction` of samples, then restore the original peak (an overdriven input stage)."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    level = float(np.quantile(np.abs(x), 1.0 - fraction)) if peak > 0 else 0.0
    if level <= 0.0:
        return Degraded(x.copy(), [Applied("clipping", {"fraction": 0.0}, 0.0)])
    y = np.clip(x, -level, level) * (peak / level)
    q = float(np.mean(np.abs(x) >= level))
    return Degraded(y.astype(np.float32), [Applied("clipping", {"fraction": q}, _severity(np.sqrt(q / 0.1)))])


def band_limit(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> Degraded:
    """8th-order zero-phase Butterworth low-pass at cutoff_hz."""
    nyquist = sample_rate / 2.0
    cutoff = min(cutoff_hz, 0.99 * nyquist)
    sos = sps.butter(8, cutoff, btype="lowpass", fs=sample_rate, output="sos")
    y = (
        sps.sosfiltfilt(sos, x).astype(np.float32) if x.size > 54 else x.copy()
    )  # filtfilt needs > 3 x order x 2 samples
    return Degraded(y, [Applied("bandlimit", {"cutoff_hz": cutoff}, _severity(np.log2(nyquist / cutoff) / 3.0))])


def reverberate(x: np.ndarray, sample_rate: int, rt60_s: float, rng: np.random.Generator) -> Degraded:
    """Convolve with a synthetic room response: a direct impulse plus an exponentially decaying noise tail
    (60 dB down at rt60_s) of equal energy (direct-to-reverberant ratio 0 dB); the output keeps x's RMS."""
    n = max(1, int(rt60_s * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-np.log(1000.0) * t / rt60_s)
    tail[0] = 0.0
    rir = tail / np.sqrt(np.sum(tail**2) + 1e-12)
    rir[0] = 1.0
    y = sps.fftconvolve(x, rir)[: x.size]
    p_y = _power(y)
    y = y * np.sqrt(_power(x) / p_y) if p_y > 0 else y
    return Degraded(y.astype(np.float32), [Applied("reverb", {"rt60_s": rt60_s}, _severity((rt60_s - 0.1) / 0.9))])


def compress(x: np.ndarray, sample_rate: int, codec: str, kbps: float) -> Degraded:
    """Lossy round trip through PyAV (ffmpeg): encode at kbps, decode, back to sample_rate and len(x)."""
    encoder, container = _CODECS[codec]
    rate = sample_rate if codec != "opus" or sample_rate in _OPUS_RATES else 48000
    src = resample(x, sample_rate, rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(encoder, rate=rate, layout="mono")
        stream.bit_rate = int(kbps * 1000)
        frame = av.AudioFrame.from_ndarray(src[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        decoded_rate = inp.streams.audio[0].rate
        parts = [f.to_ndarray().mean(axis=0) for f in inp.decode(audio=0)]  # decoders give planar (channels, n)
    y = (
        resample(np.concatenate(parts).astype(np.float32), decoded_rate, sample_rate)
        if parts
        else np.zeros(0, np.float32)
    )
    y = np.pad(y[: x.size], (0, max(0, x.size - y.size)))
    severity = _severity(np.log2(TRANSPARENT_KBPS[codec] / kbps) / 2.0)
    return Degraded(y.astype(np.float32), [Applied("codec", {"codec": codec, "kbps": kbps}, severity)])


def random_degradation(
    kind: str,
    x: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    noises: Sequence[np.ndarray] = (),
    speakers: Sequence[np.ndarray] = (),
) -> Degraded:
    """Apply `kind` with a parameter drawn from the range used for bootstrapping."""
    if kind == "noise":
        return add_noise(x, noises[int(rng.integers(len(noises)))], float(rng.uniform(-5.0, 30.0)), rng)
    if kind == "second_speaker":
        return add_speaker(x, speakers[int(rng.integers(len(speakers)))], float(rng.uniform(0.0, 25.0)), rng)
    if kind == "clipping":
        return clip(x, float(rng.uniform(0.002, 0.15)))
    if kind == "bandlimit":
        return band_limit(
            x, sample_rate, float(np.exp(rng.uniform(np.log(sample_rate / 16), np.log(sample_rate * 0.45))))
        )
    if kind == "reverb":
        return reverberate(x, sample_rate, float(rng.uniform(0.2, 1.2)), rng)
    if kind == "codec":
        return compress(x, sample_rate, "opus", float(rng.choice([6.0, 8.0, 10.0, 12.0, 16.0, 24.0])))
    raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(KINDS)}")


def fit_peak(x: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale down (never up) so that |x| <= peak: a WAV written from it is not clipped by accident."""
    m = float(np.abs(x).max()) if x.size else 0.0
    return (x * (peak / m)).astype(np.float32) if m > peak else x.astype(np.float32)


def bootstrap(
    clean: Mapping[str, np.ndarray],
    sample_rate: int,
    noises: Sequence[np.ndarray],
    per_clip: int = 4,
    max_kinds: int = 2,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
) -> list[tuple[str, Degraded]]:
    """For each clean clip (by name): the clip itself (labels all 5) and `per_clip` degraded versions, each with
    1..max_kinds distinct kinds chained in random order. The second speaker is drawn from the other clips.

    Returns (name, Degraded) pairs; names are '<clip>__clean' and '<clip>__dNN'. Deterministic for a seed.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown degradations {unknown}; known: {', '.join(KINDS)}")
    usable = [k for k in kinds if (k != "noise" or noises) and (k != "second_speaker" or len(clean) > 1)]
    if not usable:
        raise ValueError("no usable degradation: give noise files or more than one clean clip")
    rng = np.random.default_rng(seed)
    names = sorted(clean)
    out: list[tuple[str, Degraded]] = []
    for name in names:
        x = np.asarray(clean[name], dtype=np.float32)
        out.append((f"{name}__clean", Degraded(fit_peak(x))))
        others = [clean[n] for n in names if n != name]
        for k in range(per_clip):
            chosen = rng.choice(usable, size=int(rng.integers(1, min(max_kinds, len(usable)) + 1)), replace=False)
            y, applied = x, []
            for kind in chosen:
                step = random_degradation(str(kind), y, sample_rate, rng, noises, others)
                y, applied = step.audio, applied + step.applied
            out.append((f"{name}__d{k:02d}", Degraded(fit_peak(y), applied)))
    return out
