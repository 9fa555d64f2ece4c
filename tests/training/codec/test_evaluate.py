"""The evaluation metrics: PESQ on the `pesq` package's own example gives the package's documented score, STOI and PESQ
are the packages' values, SI-SDR has its defining properties, and a codec evaluation reports every field."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile
from pystoi import stoi as pystoi_stoi

from models.codec.checkpoint import RandomWeightsWarning, random_codec
from models.codec.config import CodecConfig
from tests.conftest import DATA
from training.codec.evaluate import CodecEvaluator, pesq_wideband, si_sdr, stoi

# ludlows/PESQ's README and tests/test_pesq.py: pesq(16000, speech.wav, speech_bab_0dB.wav, 'wb')
PESQ_EXAMPLE_WB = 1.0832337141036987


@pytest.fixture(scope="module")
def example():
    ref, rate = soundfile.read(DATA / "metrics" / "pesq__speech.wav", dtype="float32")
    deg, _ = soundfile.read(DATA / "metrics" / "pesq__speech_bab_0dB.wav", dtype="float32")
    return ref, deg, rate


def test_pesq_gives_the_packages_own_example_score(example):
    ref, deg, rate = example
    assert pesq_wideband(ref, deg, rate) == PESQ_EXAMPLE_WB
    assert pesq_wideband(ref, ref, rate) == pytest.approx(4.644, abs=1e-3)  # P.862.2's ceiling
    assert pesq_wideband(np.zeros(rate, np.float32), deg[:rate], rate) is None  # no utterance: no score


def test_stoi_is_the_packages_and_orders_degradations(example):
    ref, deg, rate = example
    assert stoi(ref, deg, rate) == pystoi_stoi(ref, deg, rate, extended=False)
    assert stoi(ref, ref, rate) == pytest.approx(1.0, abs=1e-6)
    light = ref + 0.1 * (deg - ref)
    assert stoi(ref, ref, rate) > stoi(ref, light, rate) > stoi(ref, deg, rate)


def test_si_sdr_is_scale_invariant_and_measures_the_orthogonal_error():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    s -= s.mean()
    n = rng.standard_normal(16000)
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s  # orthogonal to s
    n *= np.sqrt((s @ s) / (n @ n) / 100)  # 20 dB below s
    assert si_sdr(s, 0.5 * s + 0.5 * n) == pytest.approx(20.0, abs=1e-6)
    assert si_sdr(s, 3 * (s + n)) == pytest.approx(20.0, abs=1e-6)


def test_a_codec_evaluation_reports_every_metric_and_codebook_usage():
    clip, rate = soundfile.read(DATA / "fullband" / "whisper__jfk_5s.flac", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        codec = random_codec(CodecConfig.tiny())
    summary, rows, outputs = CodecEvaluator(rate).evaluate(codec, [clip[: rate // 2], clip[rate : 2 * rate]])
    assert summary["clips"] == 2 and len(rows) == 2
    assert [o.shape for o in outputs] == [(rate // 2,), (rate,)]
    for name in ("mel_distance", "stoi", "pesq", "si_sdr"):
        assert summary[name] == pytest.approx(np.mean([r[name] for r in rows]))
    assert len(summary["codebook_perplexity"]) == 10 and all(p >= 1 for p in summary["codebook_perplexity"])
    assert all(0 < u <= 1 for u in summary["codebook_used"])
    assert rows[0]["mel_distance"] > 0 and CodecEvaluator(rate).clip_metrics(clip, clip)["mel_distance"] == 0
