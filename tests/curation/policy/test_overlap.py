"""The second-voice pitch test (curation.policy.overlap) on voices whose pitch is known: harmonic complexes with
vibrato, in bursts of 0.33 s separated by silence as speech is."""

import numpy as np

from curation.policy.diarization import FRAME_S
from curation.policy.overlap import overlap_frames, overlap_seconds

SR = 16000
T = np.arange(3 * SR) / SR
BURSTS = np.sin(2 * np.pi * 1.5 * T) > 0


def voice(f0: float, vibrato: float, rate_hz: float) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0 * (1 + vibrato * np.sin(2 * np.pi * rate_hz * T))) / SR
    return (0.1 * sum(np.sin(k * phase) / k for k in range(1, 15)) * BURSTS).astype(np.float32)


def test_one_voice_is_not_overlapped_and_two_are():
    one, other = voice(120, 0.03, 5), voice(205, 0.04, 4)
    assert overlap_seconds(one, SR) == 0.0 and overlap_seconds(other, SR) == 0.0
    assert overlap_seconds(one + other, SR) > 0.7 * BURSTS.mean() * 3.0  # most of the time both speak


def test_overlap_is_found_where_the_second_voice_speaks():
    second = voice(205, 0.04, 4) * (T >= 1.5)
    flags = overlap_frames(voice(120, 0.03, 5) + second, SR)
    half = int(1.5 / FRAME_S)
    assert flags[half:].sum() > 20 * max(1, flags[:half].sum())
    # the same at 44.1 kHz: the test runs at 16 kHz whatever the rate
    from models.signal import resample

    loud = overlap_seconds(resample(voice(120, 0.03, 5) + second, SR, 44100), 44100)
    assert abs(loud - flags.sum() * FRAME_S) < 0.15
