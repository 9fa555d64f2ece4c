"""Real audio cases for the rewards (tests/data): CMU ARCTIC speakers aew and axb with their prompts, LibriSpeech
(leopard) with its transcript, a two-speaker dialogue built from two of them, and recorded noise."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from models.signal import resample
from tests.conftest import DATA

SR = 16000
ARCTIC = {
    "aew_a0001": "Author of the danger trail, Philip Steels, etc.",
    "axb_a0004": "Lord, but I'm glad to see you again, Phil.",
}
LEOPARD = "Mr. Quilter is the apostle of the middle classes and we are glad to welcome his gospel."


def clip(name: str) -> np.ndarray:
    """A 16 kHz CMU ARCTIC clip by speaker and prompt, e.g. 'aew_a0001'."""
    x, sr = sf.read(DATA / "speech" / f"pyroomacoustics__cmu_arctic_us_{name}.wav", dtype="float32")
    assert sr == SR
    return x


def leopard() -> np.ndarray:
    x, sr = sf.read(DATA / "speech" / "leopard__test.wav", dtype="float32")
    assert sr == SR
    return x


def dialogue() -> np.ndarray:
    """aew says a0001, half a second of silence, then axb says a0004."""
    return np.concatenate([clip("aew_a0001"), np.zeros(SR // 2, np.float32), clip("axb_a0004")])


def dialogue_text(turns: bool = True) -> str:
    a, b = ARCTIC["aew_a0001"], ARCTIC["axb_a0004"]
    return f"<|speaker:0|>{a}<|speaker:1|>{b}" if turns else f"<|speaker:0|>{a} {b}"


def with_noise(x: np.ndarray, snr_db: float) -> np.ndarray:
    """`x` plus recorded kitchen noise at this signal-to-noise ratio."""
    noise, sr = sf.read(DATA / "noise" / "dishes_20s.flac", dtype="float32", always_2d=True)
    noise = resample(noise.mean(axis=1), sr, SR)[: len(x)]
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + gain * noise).astype(np.float32)
