import numpy as np
import pytest

from curation.evaluation import degrade as D
from curation.io.audio import decode_file
from tests.conftest import DATA

SR = 16000


@pytest.fixture(scope="module")
def speech():
    return [
        decode_file(str(DATA / "speech" / f), SR).audio[: 2 * SR]
        for f in ("pyroomacoustics__cmu_arctic_us_aew_a0001.wav", "pyroomacoustics__cmu_arctic_us_axb_a0004.wav")
    ]


@pytest.fixture(scope="module")
def noise():
    return decode_file(str(DATA / "noise" / "dishes_20s.flac"), SR).audio


def _power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


@pytest.mark.parametrize("snr", [20.0, 5.0, 0.0])
def test_noise_is_mixed_at_the_requested_snr(speech, noise, snr):
    x = speech[0]
    y = D.add_noise(x, noise, snr, np.random.default_rng(0))
    measured = 10 * np.log10(_power(x) / _power(y.audio - x))
    assert abs(measured - snr) < 1e-3
    assert y.applied[0].kind == "noise" and y.applied[0].severity == pytest.approx((30 - snr) / 35)


def test_labels_fall_with_snr_on_the_dimensions_noise_affects(speech, noise):
    labels = [D.add_noise(speech[0], noise, s, np.random.default_rng(0)).labels for s in (30.0, 20.0, 10.0, 0.0)]
    assert labels[0]["snr"] == 5.0
    for dim in ("overall", "snr", "intelligibility"):
        values = [lab[dim] for lab in labels]
        assert values == sorted(values, reverse=True) and values[-1] < values[0]
    assert all(lab["speaker_consistency"] == 5.0 for lab in labels)


def test_second_speaker_hurts_speaker_consistency_not_recording_quality(speech):
    y = D.add_speaker(speech[0], speech[1], 0.0, np.random.default_rng(0))
    assert y.labels["speaker_consistency"] == 1.0 and y.labels["recording_quality"] == 5.0


def test_clipping_clips_the_requested_fraction_and_keeps_the_peak(speech):
    x = speech[0]
    y = D.clip(x, 0.05)
    peak = np.abs(y.audio).max()
    assert peak == pytest.approx(np.abs(x).max(), rel=1e-5)
    assert np.mean(np.abs(y.audio) >= peak * 0.9999) == pytest.approx(0.05, abs=0.005)
    assert y.labels["recording_quality"] < 5.0


def test_band_limit_removes_energy_above_the_cutoff(speech):
    x = speech[0]
    y = D.band_limit(x, SR, 2000.0).audio
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    above = lambda s: np.sum(np.abs(np.fft.rfft(s))[freqs > 3000] ** 2)  # noqa: E731
    assert above(y) < 1e-3 * above(x)


def test_reverb_keeps_the_level_and_adds_a_tail(speech):
    x = np.zeros(SR, np.float32)
    x[:1600] = speech[0][:1600]
    y = D.reverberate(x, SR, 0.8, np.random.default_rng(0)).audio
    assert _power(y) == pytest.approx(_power(x), rel=1e-4)
    assert _power(y[4000:8000]) > 1e-3 * _power(x[:1600])  # energy well after the dry signal ended


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_codec_round_trip_keeps_length_and_changes_the_signal(speech, codec):
    x = speech[0]
    y = D.compress(x, SR, codec, 8.0)
    assert y.audio.shape == x.shape and y.audio.dtype == np.float32
    assert 0 < _power(y.audio - x) and _power(y.audio) > 0.1 * _power(x)
    assert y.applied[0].params["codec"] == codec and y.applied[0].severity > 0.5


def test_bootstrap_is_deterministic_and_labels_every_copy(speech, noise):
    clean = {"a": speech[0], "b": speech[1]}
    one = D.bootstrap(clean, SR, [noise], per_clip=3, seed=7)
    two = D.bootstrap(clean, SR, [noise], per_clip=3, seed=7)
    assert [n for n, _ in one] == ["a__clean", "a__d00", "a__d01", "a__d02", "b__clean", "b__d00", "b__d01", "b__d02"]
    for (_, p), (_, q) in zip(one, two):
        assert np.array_equal(p.audio, q.audio) and p.applied == q.applied
    assert one[0][1].labels == dict.fromkeys(one[0][1].labels, 5.0)
    assert all(item.applied and min(item.labels.values()) < 5.0 for name, item in one if "__d" in name)
    assert all(np.abs(item.audio).max() <= 0.99 + 1e-6 for _, item in one)
    other = D.bootstrap(clean, SR, [noise], per_clip=3, seed=8)
    assert any(not np.array_equal(p.audio, q.audio) for (_, p), (_, q) in zip(one, other))


def test_bootstrap_rejects_unknown_kinds(speech):
    with pytest.raises(ValueError, match="unknown degradations"):
        D.bootstrap({"a": speech[0]}, SR, [], kinds=["noise", "bitcrush"])
