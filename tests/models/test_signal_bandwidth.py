"""The bandwidth estimate on speech narrowed upstream: within 10% of the cut, whatever silence or stationary noise
fills the segment, and unknown (None) where there is nothing to measure."""

from __future__ import annotations

import numpy as np
import pytest

from curation.evaluation.bandwidth import FULL_BAND_RATE, narrowed
from curation.io.audio import decode_file
from models.signal import effective_bandwidth_hz
from tests.conftest import DATA

SR = FULL_BAND_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return decode_file(str(DATA / "fullband" / "whisper__jfk_5s.flac"), SR).audio  # its own band: ~12.8 kHz


@pytest.mark.parametrize("cutoff", [4000, 8000, 11000])
def test_speech_narrowed_upstream_reads_its_cut_not_its_rate(speech, cutoff):
    est = effective_bandwidth_hz(narrowed(speech, SR, cutoff), SR)
    assert est == pytest.approx(cutoff, rel=0.1)


def test_full_band_music_reads_full_band_and_its_16k_cut():
    music = decode_file(str(DATA / "noise" / "music_vibe_ace_20s.ogg"), SR).audio[: 8 * SR]
    assert effective_bandwidth_hz(music, SR) > 18000
    assert effective_bandwidth_hz(narrowed(music, SR, 16000), SR) == pytest.approx(16000, rel=0.1)


def test_silence_and_stationary_noise_do_not_widen_the_band(speech):
    call = narrowed(speech, SR, 4000)
    rng = np.random.default_rng(0)
    # a second of digital silence each side, and a -60 dBFS hiss over the whole band (a line's noise floor,
    # a noise-shaped dither): both are there when nobody speaks as much as when somebody does
    padded = np.concatenate([np.zeros(SR, np.float32), call, np.zeros(SR, np.float32)])
    hiss = (1e-3 * rng.standard_normal(len(padded))).astype(np.float32)
    assert effective_bandwidth_hz(padded, SR) == pytest.approx(4000, rel=0.1)
    assert effective_bandwidth_hz(padded + hiss, SR) == pytest.approx(4000, rel=0.1)


def test_nothing_to_measure_is_unknown():
    assert effective_bandwidth_hz(np.zeros(SR, np.float32), SR) is None  # silent
    assert effective_bandwidth_hz(np.ones(1000, np.float32), SR) is None  # shorter than two frames
