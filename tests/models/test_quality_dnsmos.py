import numpy as np
import pytest

from curation.evaluation.degrade import add_noise
from curation.io.audio import decode_file
from models import registry
from models.checkpoints import CheckpointUnavailableError
from models.quality.dnsmos import WINDOW, DnsmosScorer
from models.registry import UnknownModelError
from schemas.config import ModelSpec
from tests.conftest import DATA

SR = 16000
CLIPS = [f"pyroomacoustics__cmu_arctic_us_{c}.wav" for c in ("aew_a0001", "axb_a0004")]
NOISES = ["dishes_20s.flac", "music_vibe_ace_20s.ogg"]
SNRS = [20.0, 10.0, 5.0, 0.0]


def _load(sub: str, name: str) -> np.ndarray:
    return decode_file(str(DATA / sub / name), SR).audio


@pytest.fixture(scope="module")
def scorer() -> DnsmosScorer:
    return registry.build("quality", ModelSpec(name="dnsmos", batch_size=4), "quality.model")


@pytest.fixture(scope="module")
def ovrl_by_snr(scorer):
    """OVRL[clip, noise, level] for levels clean, 20, 10, 5, 0 dB: one batched call."""
    waves = []
    for clip in CLIPS:
        x = _load("speech", clip)
        for noise in NOISES:
            n = _load("noise", noise)
            waves += [x] + [add_noise(x, n, s, np.random.default_rng(0)).audio for s in SNRS]
    scores = scorer.score(waves, SR)
    return np.array([s.overall for s in scores]).reshape(len(CLIPS), len(NOISES), 1 + len(SNRS))


def test_overall_falls_monotonically_with_snr(ovrl_by_snr):
    mean = ovrl_by_snr.mean(axis=(0, 1))
    assert np.all(np.diff(mean) < 0), mean
    assert mean[0] - mean[-1] > 1.0
    clean, ten, zero = ovrl_by_snr[..., 0], ovrl_by_snr[..., 2], ovrl_by_snr[..., -1]
    assert np.all(clean > ten) and np.all(ten > zero)  # every clip and noise


def test_matches_the_reference_dnsmos_where_the_windowing_is_the_same(scorer):
    from speechmos import dnsmos  # the reference implementation, used here only as an oracle

    long = _load("speech", "lhotse__2412-153948-0000.flac")  # 11.7 s: two windows, 1 s apart
    short = _load("speech", "wenet__librispeech-1995-1837-0001.wav")[: int(4.8 * SR)]  # one window, padded
    for x, ours in zip((long, short), scorer.score([long, short], SR)):
        ref = dnsmos.run(x, SR)
        got = ours.extra
        assert got["ovrl"] == pytest.approx(ref["ovrl_mos"], abs=1e-3)
        assert got["sig"] == pytest.approx(ref["sig_mos"], abs=1e-3)
        assert got["bak"] == pytest.approx(ref["bak_mos"], abs=1e-3)
        assert got["p808"] == pytest.approx(ref["p808_mos"], abs=1e-3)
        assert (ours.overall, ours.snr, ours.recording_quality) == (got["ovrl"], got["bak"], got["sig"])


def test_windows_pad_short_segments_and_hop_long_ones():
    short = np.arange(3 * SR, dtype=np.float32)
    w = DnsmosScorer.windows(short)
    assert w.shape == (1, WINDOW) and np.array_equal(w[0, 3 * SR : 6 * SR], short)  # repeated, not zero-padded
    long = np.arange(int(12.5 * SR), dtype=np.float32)
    w = DnsmosScorer.windows(long)
    assert w.shape == (3, WINDOW) and w[1, 0] == SR and w[2, 0] == 2 * SR


def test_scores_are_deterministic_and_resampled(scorer):
    x = _load("speech", CLIPS[0])
    a, b = scorer.score([x, x], SR)
    assert a == b
    from models.signal import resample

    c = scorer.score([resample(x, SR, 48000)], 48000)[0]
    assert c.overall == pytest.approx(a.overall, abs=0.05)
    assert a.model_id.startswith("dnsmos") and set(a.dimensions()) == set(scorer.dimensions)


def test_empty_input_raises(scorer):
    with pytest.raises(ValueError, match="waveform 1"):
        scorer.score([np.ones(SR, np.float32) * 0.1, np.zeros(0, np.float32)], SR)


def test_preflight_names_the_missing_model(tmp_path):
    registry.preflight("quality", ModelSpec(name="dnsmos"), "quality.model")
    with pytest.raises(CheckpointUnavailableError, match="sig_bak_ovr.onnx.*quality.model.checkpoint"):
        registry.preflight("quality", ModelSpec(name="dnsmos", checkpoint=str(tmp_path)), "quality.model")
    with pytest.raises(UnknownModelError, match=r"quality\.model\.name: unknown quality model 'nope'"):
        registry.preflight("quality", ModelSpec(name="nope"), "quality.model")


def test_scores_do_not_depend_on_memory_settings_or_batching(scorer):
    x = _load("speech", CLIPS[0])
    long = np.concatenate([x, x, x])  # several windows, so batch size 1 runs the model more than once
    lean = DnsmosScorer.from_spec(ModelSpec(name="dnsmos", batch_size=1, options={"arena": False}))
    assert [s.model_dump() for s in lean.score([x, long], SR)] == [s.model_dump() for s in scorer.score([x, long], SR)]


def test_a_segments_scores_are_the_same_bytes_whatever_shares_its_runs(scorer):
    """Windows of several segments share runs (batch_size 4: a 1-window segment rides with its neighbours' windows);
    each segment's scores equal those it gets alone, one window per run, in any order."""
    x = _load("speech", CLIPS[0])
    noisy = add_noise(x, _load("noise", NOISES[1]), 5.0, np.random.default_rng(0)).audio
    segments = [x[: SR * 2], np.concatenate([x, x, x]), noisy, x[SR:], np.concatenate([noisy, x, x])]
    alone = DnsmosScorer.from_spec(ModelSpec(name="dnsmos", batch_size=1))
    expected = [alone.score([s], SR)[0].model_dump() for s in segments]
    assert [len(DnsmosScorer.windows(s)) for s in segments] == [1, 2, 1, 1, 2]  # 7 windows: runs of 4, 3
    for order in (list(range(len(segments))), [4, 2, 0, 3, 1]):
        got = scorer.score([segments[i] for i in order], SR)
        assert [g.model_dump() for g in got] == [expected[i] for i in order]
