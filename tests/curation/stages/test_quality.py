import re

import numpy as np
import pytest

from curation.evaluation.degrade import add_noise
from curation.io.audio import decode_file
from curation.stages.quality import QualityStage
from schemas.config import ModelSpec, QualityConfig
from schemas.quality import QualityScores
from schemas.rejects import RejectReason, Stage
from tests.conftest import DATA
from tests.factories import segment_row

SR = 16000
CLEAN = [
    "pyroomacoustics__cmu_arctic_us_aew_a0002.wav",
    "pyroomacoustics__cmu_arctic_us_axb_a0006.wav",
    "leopard__test.wav",
    "lhotse__LJ002-0020.wav",
]


@pytest.fixture(scope="module")
def stage() -> QualityStage:
    stage = QualityStage(QualityConfig(model=ModelSpec(name="dnsmos", batch_size=4)))  # default thresholds
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def result(stage):
    clean = [decode_file(str(DATA / "speech" / f), SR).audio for f in CLEAN]
    noise = decode_file(str(DATA / "noise" / "dishes_20s.flac"), SR).audio
    music = decode_file(str(DATA / "noise" / "music_vibe_ace_20s.ogg"), SR).audio
    mixes = [add_noise(x, n, 0.0, np.random.default_rng(i)).audio for i, x in enumerate(clean) for n in (noise, music)]
    return stage([segment_row(x, SR, i) for i, x in enumerate(clean + mixes)])


def test_default_thresholds_keep_clean_speech_and_reject_0db_mixes(result):
    n = len(CLEAN)
    assert [r.reject for r in result[:n]] == [None] * n
    rejects = [r.reject for r in result[n:]]
    assert len(rejects) == 2 * n and all(
        r is not None and r.stage == "quality" and r.reason == "quality_below_threshold" for r in rejects
    )
    for r in rejects:  # detail names each failed threshold with its value
        assert re.fullmatch(
            r"(overall|recording_quality) \d\.\d\d < \d(\.\d+)?(; (overall|recording_quality) \d\.\d\d < \d(\.\d+)?)*",
            r.detail,
        ), r.detail


def test_scores_are_written_for_kept_and_rejected_rows(result):
    for i, row in enumerate(result):
        q = row.sample.quality
        assert q is not None and q.model_id.startswith("dnsmos") and {"sig", "bak", "ovrl", "p808"} <= set(q.extra), i
    kept = [r.sample.quality.overall for r in result if r.live]
    rejected = [r.sample.quality.overall for r in result if not r.live]
    assert min(kept) > max(rejected)


def test_bad_rows_are_rejected_and_rejected_rows_pass_untouched(stage):
    ok = segment_row(0.1 * np.sin(np.linspace(0, 2000, SR)).astype(np.float32), SR, 0)
    empty = segment_row(np.zeros(0, np.float32), SR, 1)
    done = segment_row(np.zeros(SR, np.float32), SR, 2).rejected(Stage.SEGMENTATION, RejectReason.NO_SPEECH)
    before = done.copy()
    out = stage([ok, empty, done])
    assert [r.key for r in out] == [ok.key, empty.key, done.key]
    assert out[1].reject.reason == "invalid_audio" and out[1].reject.stage == "quality"
    assert out[2] == before and out[2].sample.quality is None
    assert out[0].sample.quality is not None


def test_a_threshold_on_a_dimension_the_model_lacks_fails_at_setup():
    stage = QualityStage(QualityConfig(thresholds={"overall": 2.8, "intelligibility": 3.0}))  # building loads nothing
    with pytest.raises(ValueError, match=r"quality\.thresholds\.intelligibility.*does not score"):
        stage.setup()


def test_failed_thresholds_lists_each_failure_and_treats_nan_as_failing():
    s = QualityScores(model_id="m", overall=2.41, recording_quality=3.5, snr=float("nan"))
    assert s.failed({"overall": 2.8, "recording_quality": 3.2, "snr": 1.0}) == ["overall 2.41 < 2.8", "snr nan < 1"]
    assert s.failed({"intelligibility": 3.0}) == ["intelligibility missing < 3"]
