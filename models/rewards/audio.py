"""Audio in and out of the rewards: decoding request payloads, and the checks every waveform passes before a model
sees it. A waveform that fails is an item's error (worst reward, with the reason), never an exception for the batch."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from models.signal import resample, to_mono
from schemas.rewards import AudioLimits, AudioPayload, PcmAudio


class AudioError(ValueError):
    """This waveform cannot be scored; the message is the reason given to the caller."""


def as_float(x: np.ndarray) -> np.ndarray:
    """Samples as floats in [-1, 1]: integer PCM is scaled by its type's range, floats are kept."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
    return x


def check(x: np.ndarray, sample_rate: int, limits: AudioLimits) -> np.ndarray:
    """Mono float32 of a waveform fit to score, or AudioError saying why not."""
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise AudioError(f"sample rate {sample_rate} Hz outside {limits.min_sample_rate}-{limits.max_sample_rate} Hz")
    x = to_mono(as_float(x))
    if x.ndim != 1:
        raise AudioError(f"expected samples or (samples, channels), got shape {x.shape}")
    if x.size == 0:
        raise AudioError("empty")
    if x.size > limits.max_seconds * sample_rate:
        raise AudioError(f"{x.size / sample_rate:.1f} s is longer than {limits.max_seconds:g} s")
    if not np.isfinite(x).all():
        raise AudioError("non-finite samples (NaN or inf)")
    peak = float(np.abs(x).max())
    if peak <= limits.silence_peak:
        raise AudioError(f"silent (peak {peak:.2g} <= {limits.silence_peak:g})")
    return x


def prepare(x: np.ndarray, sample_rate: int, model_rate: int, limits: AudioLimits) -> np.ndarray:
    """Checked and resampled to the model's rate."""
    return resample(check(x, sample_rate, limits), sample_rate, model_rate)


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioError(f"not valid base64 ({exc})") from exc


def _pcm(pcm: PcmAudio) -> np.ndarray:
    raw = _b64(pcm.data)
    dtype = np.dtype("<i2") if pcm.encoding == "s16le" else np.dtype("<f4")
    frame = dtype.itemsize * pcm.channels
    if len(raw) % frame:
        raise AudioError(
            f"{len(raw)} bytes of PCM is not a whole number of {pcm.channels}-channel {pcm.encoding} frames"
        )
    x = as_float(np.frombuffer(raw, dtype=dtype).reshape(-1, pcm.channels)).astype(np.float32)
    return x[:, 0] if pcm.channels == 1 else x


def decode(payload: AudioPayload, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """A request's audio (base64 WAV/FLAC file, or PCM with its rate) -> samples and rate, unchecked: the rewards
    check them (`check`), as they check in-process items, so both give the same reasons."""
    if isinstance(payload, PcmAudio):
        return _pcm(payload), payload.sample_rate
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(_b64(payload))) as f:
            # the header is checked before the samples are decoded: a long file is refused without reading it
            if f.frames > limits.max_seconds * f.samplerate:
                raise AudioError(f"{f.frames / f.samplerate:.1f} s is longer than {limits.max_seconds:g} s")
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except soundfile.LibsndfileError as exc:
        # its str() names the in-memory file object; the library's own reason is what the caller can act on
        raise AudioError(f"not a readable WAV or FLAC file ({exc.error_string.rstrip('.')})") from exc
    except (RuntimeError, TypeError) as exc:
        raise AudioError(f"not a readable WAV or FLAC file ({type(exc).__name__})") from exc


def encode_wav(x: np.ndarray, sample_rate: int) -> str:
    """Base64 of a 32-bit float WAV: lossless, so a service scores exactly the samples the caller holds."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, as_float(x).astype(np.float32), sample_rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buf.getvalue()).decode("ascii")
