import numpy as np
import pytest

from curation.stages.separation import SeparationStage
from models.checkpoints import CheckpointUnavailableError
from models.signal import resample
from schemas.config import ModelSpec, SeparationConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import SeparationInfo
from tests.factories import piece_row


def rows(waves: list[np.ndarray], rate: int):
    return [piece_row(w, rate, i) for i, w in enumerate(waves)]


@pytest.fixture(scope="module")
def stage(tiny_htdemucs):
    cfg = SeparationConfig(
        model=ModelSpec(name="htdemucs", checkpoint=str(tiny_htdemucs), device="cpu", batch_size=2),
        chunk_s=2.0,
        overlap_s=0.5,
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
    )
    stage = SeparationStage(
        cfg, analysis_rate=16000, max_output_rate=48000
    )  # an unusable checkpoint: building the stage does not touch it
    assert not hasattr(stage, "separator")
    with pytest.raises(CheckpointUnavailableError, match="absent.safetensors"):
        stage.setup()
