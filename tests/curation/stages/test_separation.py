import numpy as np
import pytest

from curation.stages.quality import QualityStage
from curation.stages.separation import SeparationStage
from models.checkpoints import CheckpointUnavailableError
from models.signal import resample
from schemas.config import ModelSpec, QualityConfig, SeparationConfig, SeparationGate
from schemas.rejects import RejectReason, Stage
from schemas.sample import SeparationInfo
from tests.factories import piece_row, segment_row


def rows(waves: list[np.ndarray], rate: int):
    return [piece_row(w, rate, i) for i, w in enumerate(waves)]


@pytest.fixture(scope="module")
def stage(tiny_htdemucs):
    cfg = SeparationConfig(
        model=ModelSpec(name="htdemucs", checkpoint=str(tiny_htdemucs), device="cpu", batch_size=2),
        chunk_s=2.0,
        overlap_s=0.5,
        gate=None,  # every piece, before VAD
    )
    stage = SeparationStage(cfg, analysis_rate=8000, max_output_rate=8000)  # the vocals capped at 8 kHz
    stage.setup()
    return stage


def test_live_rows_get_vocals_at_the_output_rate_and_a_separation_record(stage):
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000 * 5 + 3, 16001, 4000)]
    batch = rows(waves, 16000)
    batch[2].rejected(Stage.DECODE, RejectReason.TOO_SHORT)
    rejected = batch[2].copy()
    out = stage(batch)
    assert [r.live for r in out] == [True, True, False]
    for i in (0, 1):
        assert out[i].sample_rate == 8000
        assert len(out[i].waveform()) == len(resample(waves[i], 16000, 8000))
        assert not np.allclose(
            out[i].waveform(), resample(waves[i], 16000, 8000), atol=1e-3
        )  # separated, not merely resampled
        assert out[i].source.audio.sample_rate == 16000  # earlier facts kept
        assert out[i].separation == SeparationInfo(model_id="demucs:tiny", chunk_s=2.0, overlap_s=0.5)
        assert out[i].analysis == b"" and out[i].analysis_rate == 8000  # already at the analysis rate: no copy
    assert (
        out[2] == rejected and out[2].sample_rate == 16000 and out[2].separation is None
    )  # rejected upstream: untouched


def test_bad_rows_become_rejects_and_spare_the_rest(stage, monkeypatch):
    good = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    batch = rows([np.zeros(0, np.float32), good[:999], good[:1234]], 16000)
    # a row the model itself chokes on (here: the 1234-sample one) must not take the batch down with it,
    # nor one it turns into NaN (the 999-sample one)
    real = stage.separator.vocals

    def choke(waves, rate, output_rate):
        if any(len(w) == 1234 for w in waves):
            raise RuntimeError("model failure")
        return [np.full_like(v, np.nan) if len(w) == 999 else v for w, v in zip(waves, real(waves, rate, output_rate))]

    monkeypatch.setattr(stage.separator, "vocals", choke)
    out = stage(batch)
    assert [r.live for r in out] == [False] * 3
    details = [r.reject for r in out]
    assert {r.stage for r in details} == {"separation"} and {r.reason for r in details} == {"separation_failed"}
    assert "empty" in details[0].detail and "non-finite" in details[1].detail
    assert details[2].detail == "RuntimeError: model failure"
    assert all(r.audio == b"" and r.separation is None for r in out)


def test_a_good_row_survives_a_batch_whose_model_call_fails(stage, monkeypatch):
    good = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    batch = rows([good, good[:1234]], 16000)
    real = stage.separator.vocals

    def choke(waves, rate, output_rate):
        if any(len(w) == 1234 for w in waves):
            raise RuntimeError("model failure")
        return real(waves, rate, output_rate)

    monkeypatch.setattr(stage.separator, "vocals", choke)
    out = stage(batch)
    assert [r.live for r in out] == [True, False] and out[0].sample_rate == 8000 and len(out[0].waveform()) == 8000
    assert out[1].reject.reason == "separation_failed"


def test_the_model_loads_at_setup_not_when_the_stage_is_built(tiny_htdemucs):
    cfg = SeparationConfig(
        model=ModelSpec(name="htdemucs", checkpoint=str(tiny_htdemucs.parent / "absent.safetensors"), device="cpu"),
        chunk_s=2.0,
        overlap_s=0.5,
        gate=None,
    )
    stage = SeparationStage(
        cfg, analysis_rate=16000, max_output_rate=48000
    )  # an unusable checkpoint: building the stage does not touch it
    assert not hasattr(stage, "separator")
    with pytest.raises(CheckpointUnavailableError, match="absent.safetensors"):
        stage.setup()


# --- gated: per utterance, where needed ------------------------------------------------------------------------------


def _mix(speech: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    b = np.resize(background, len(speech))
    return speech + b * np.sqrt(np.mean(speech**2) / np.mean(b**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def utterances():
    import soundfile as sf

    from tests.conftest import DATA

    speech, sr = sf.read(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0001.wav", dtype="float32")
    noise, nsr = sf.read(DATA / "noise" / "dishes_20s.flac", dtype="float32")
    noise = resample(noise[: 10 * nsr], nsr, sr)
    return sr, speech, [speech, _mix(speech, noise, 0.0), _mix(speech, noise, 5.0), _mix(speech, noise, 15.0)]


def _gated(gate: SeparationGate) -> SeparationStage:
    stage = SeparationStage(SeparationConfig(gate=gate), 16000, 48000, QualityConfig().model)
    stage.setup()
    return stage


def test_clean_speech_is_written_untouched_and_a_strong_background_rejected(utterances):
    sr, speech, waves = utterances
    gate = SeparationGate()
    stage = _gated(gate)
    out = stage([segment_row(w, sr, i) for i, w in enumerate(waves)])
    clean = out[0]
    assert clean.live and np.array_equal(clean.pcm(), segment_row(speech, sr, 9).pcm())  # bit for bit
    assert clean.sample.separation.applied is False and clean.sample.separation.background >= gate.min_clean
    assert clean.sample.separation.speech_to_background_db is None  # the separator never ran
    assert clean.sample.quality is not None and round(clean.sample.quality.snr, 4) == clean.sample.separation.background
    loud = out[1]  # speech and dish noise at equal power
    assert loud.reject.reason == "background_too_strong" and f"< min_snr_db {gate.min_snr_db:g}" in loud.reject.detail
    sep = loud.sample.separation
    assert sep.background < gate.min_clean and sep.speech_to_background_db < gate.min_snr_db
    for row in out[1:]:  # every decision follows from the recorded figures
        sep = row.sample.separation
        vocals_fail = sep.vocals_quality is not None and any(
            sep.vocals_quality[d] < m for d, m in gate.vocals_min.items()
        )
        if sep.background >= gate.min_clean:
            assert row.live and not sep.applied
        elif sep.speech_to_background_db < gate.min_snr_db or vocals_fail:
            assert row.reject.reason == "background_too_strong"
        elif sep.speech_to_background_db >= gate.untouched_snr_db:
            assert row.live and not sep.applied and row.sample.quality is not None
        else:  # written as its vocals, with their scores
            assert (
                row.live
                and sep.applied
                and row.sample.quality.snr == pytest.approx(sep.vocals_quality["snr"], abs=1e-4)
            )


def test_what_the_gate_sends_to_the_separator_is_separated(utterances):
    sr, speech, waves = utterances
    stage = _gated(
        SeparationGate(min_clean=100.0, untouched_snr_db=100.0, min_snr_db=None, vocals_min={})
    )  # everything separated
    out = stage([segment_row(w, sr, i) for i, w in enumerate(waves[:3])])
    for row, w in zip(out, waves):
        sep = row.sample.separation
        assert row.live and sep.applied and sep.model_id == "spleeter:2stems" and row.sample.quality is None
        assert row.sample.audio.sample_rate == 16000 and abs(row.n_samples - len(w)) <= 2
        assert not np.allclose(row.waveform()[: len(w) - 2], w[: len(w) - 2], atol=1e-3)  # separated, not copied
    # the separated clean speech is no longer its input: what the gate exists to avoid
    assert out[0].sample.separation.speech_to_background_db > 10


def test_a_gate_without_quality_fails_at_start():
    with pytest.raises(ValueError, match="separation.gate: decides on the quality model"):
        SeparationStage(SeparationConfig(), 16000, 48000, None)


def test_the_gate_keeps_the_full_band_and_separated_utterances_get_a_new_analysis_copy(utterances):
    sr, speech, waves = utterances
    full = [resample(w, sr, 48000) for w in (speech, waves[2])]
    out = _gated(SeparationGate())([segment_row(w, 48000, i) for i, w in enumerate(full)])
    assert (
        out[0].live and out[0].sample_rate == 48000 and np.array_equal(out[0].pcm(), segment_row(full[0], 48000).pcm())
    )
    out = _gated(SeparationGate(min_clean=100.0, untouched_snr_db=100.0, min_snr_db=None, vocals_min={}))(
        [segment_row(w, 48000, i) for i, w in enumerate(full)]
    )
    for row, w in zip(out, full):
        assert row.live and row.sample.separation.applied
        assert row.sample_rate == row.sample.audio.sample_rate == 44100  # the separator's band, not upsampled back
        assert row.analysis_rate == 16000 and abs(len(row.analysis_waveform()) - len(w) // 3) <= 2


def test_a_gate_whose_bars_cross_fails_naming_them():
    with pytest.raises(ValueError, match="min_snr_db 20 is above untouched_snr_db 15"):
        SeparationGate(min_snr_db=20.0)


# --- the gate's decision on separated speech -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beds():
    """Repo clips: read speech (LibriSpeech), a music bed, dish clatter and a noise recording, at 16 kHz."""
    import soundfile as sf

    from tests.conftest import DATA

    def read(path):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        return resample(x.mean(axis=1), sr, 16000)

    return {
        "speech": read(DATA / "speech" / "leopard__test.wav"),
        "arctic": read(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0001.wav"),
        "music": read(DATA / "noise" / "music_vibe_ace_20s.ogg")[16000:],
        "strings": read(DATA / "noise" / "music_hungarian_dance_20s.ogg")[16000:],
        "dishes": read(DATA / "noise" / "dishes_20s.flac")[16000:],
        "noise": read(DATA / "noise" / "deepfilternet__noise_freesound_573577.wav"),
    }


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    n = min(len(est), len(ref))
    est, ref = est[:n] - est[:n].mean(), ref[:n] - ref[:n].mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def test_speech_over_a_quiet_music_bed_is_kept_as_its_separated_vocals(beds):
    # podcasts with a music bed 10 dB under the voice: the separator's ratio reads 11-14 dB (the ratio alone asked 12,
    # then 15 to leave the input untouched), yet the vocals are clean speech: kept, judged by what they are
    gate, cfg = SeparationGate(), QualityConfig()
    mixes = [(beds["speech"], beds["music"]), (beds["arctic"], beds["strings"])]
    rows = [segment_row(_mix(speech, bed, 10.0), 16000, i) for i, (speech, bed) in enumerate(mixes)]
    quality = QualityStage(cfg)
    quality.setup()
    out = quality(_gated(gate)(rows))
    for row, (speech, _) in zip(out, mixes):
        sep = row.sample.separation
        assert row.live and sep.applied, row.reject
        assert sep.speech_to_background_db < gate.untouched_snr_db and set(sep.vocals_quality) == set(gate.vocals_min)
        assert row.sample.quality.snr == pytest.approx(sep.vocals_quality["snr"], abs=1e-4)  # the vocals' own scores
        assert _si_sdr(row.waveform(), speech) >= 12.0  # the benchmark's bar for a kept segment
    assert out[0].sample.separation.speech_to_background_db < 12.0
    # separation lowers DNSMOS 'overall' even for clean speech: vocals are held to the gate's bars, not the quality
    # stage's minimums (calibrated on unseparated audio)
    assert out[1].sample.quality.overall < cfg.thresholds["overall"]


def test_noise_alone_and_dish_clatter_passed_as_vocals_are_rejected(beds):
    gate = SeparationGate()
    waves = [
        beds["dishes"][: 4 * 16000],
        beds["noise"][: 4 * 16000],
        beds["music"][: 4 * 16000],
        # speech over dishes at +10 dB: Spleeter passes the clatter as vocals, so its ratio (about 17 dB) would leave
        # the input untouched, 10 dB of clatter and all; the vocals' background score says what they are
        _mix(beds["arctic"], beds["dishes"], 10.0),
    ]
    out = _gated(gate)([segment_row(w, 16000, i) for i, w in enumerate(waves)])
    assert [r.reject.reason if r.reject else None for r in out] == ["background_too_strong"] * 4
    clatter = out[3].sample.separation
    assert clatter.speech_to_background_db >= gate.untouched_snr_db and "(vocals_min)" in out[3].reject.detail
    assert clatter.vocals_quality["snr"] < gate.vocals_min["snr"]


def test_clean_speech_the_separator_leaves_alone_stays_untouched_whatever_its_vocals_signal_score(beds):
    # every utterance sent to the separator; a signal bar no vocals reach: clean speech (ratio far above
    # untouched_snr_db) is still written untouched, held to the quality stage's minimums on its own scores, as without
    # the vocals' scores (only their background score counts there)
    gate = SeparationGate(min_clean=100.0, vocals_min={"snr": 2.7, "recording_quality": 5.0})
    out = _gated(gate)([segment_row(beds["arctic"], 16000)])[0]
    sep = out.sample.separation
    assert out.live and not sep.applied and sep.speech_to_background_db >= gate.untouched_snr_db, out.reject
    assert np.array_equal(out.pcm(), segment_row(beds["arctic"], 16000).pcm())
