import json
import re
from pathlib import Path

import numpy as np
import pytest

from curation.audio import decode_file
from curation.batch import pcm_bytes
from curation.degrade import add_noise
from curation.quality import QualityStage, failed_thresholds
from schemas.config import ModelSpec, QualityConfig
from schemas.quality import QualityScores
from schemas.sample import AudioFacts, Reject, Sample, SourceRef

DATA = Path(__file__).resolve().parents[1] / "data"
SR = 16000
CLEAN = ["pyroomacoustics__cmu_arctic_us_aew_a0002.wav", "pyroomacoustics__cmu_arctic_us_axb_a0006.wav", "leopard__test.wav", "lhotse__LJ002-0020.wav"]


def _row(i: int, x: np.ndarray) -> dict:
    facts = AudioFacts(sample_rate=SR, channels=1, duration_s=len(x) / SR)
    s = Sample(key=f"{i:016x}_00000", source=SourceRef(uri=f"mem://{i}", start_s=0.0, end_s=len(x) / SR, audio=facts), audio=facts)
    return {
        "key": s.key, "input_index": i, "unit": 0, "source_uri": s.source.uri, "pcm": pcm_bytes(x), "sample_rate": SR,
        "sample_json": s.model_dump_json(exclude_none=True), "reject_json": "", "file_rows": 1, "meta_json": "", "piece": 0, "last_piece": True,
    }  # fmt: skip


def _batch(rows: list[dict]) -> dict:
    return {c: [r[c] for r in rows] for c in rows[0]}


@pytest.fixture(scope="module")
def stage() -> QualityStage:
    return QualityStage(QualityConfig(model=ModelSpec(name="dnsmos", batch_size=4)))  # default thresholds


@pytest.fixture(scope="module")
def result(stage):
    clean = [decode_file(str(DATA / "speech" / f), SR).audio for f in CLEAN]
    noise = decode_file(str(DATA / "noise" / "dishes_20s.flac"), SR).audio
    music = decode_file(str(DATA / "noise" / "music_vibe_ace_20s.ogg"), SR).audio
    mixes = [add_noise(x, n, 0.0, np.random.default_rng(i)).audio for i, x in enumerate(clean) for n in (noise, music)]
    return stage(_batch([_row(i, x) for i, x in enumerate(clean + mixes)]))


def test_default_thresholds_keep_clean_speech_and_reject_0db_mixes(result):
    n = len(CLEAN)
    assert result["reject_json"][:n] == [""] * n
    rejects = [Reject.model_validate_json(r) for r in result["reject_json"][n:]]
    assert len(rejects) == 2 * n and all(r.stage == "quality" and r.reason == "quality_below_threshold" for r in rejects)
    for r in rejects:  # detail names each failed threshold with its value
        assert re.fullmatch(r"(overall|recording_quality) \d\.\d\d < \d(\.\d+)?(; (overall|recording_quality) \d\.\d\d < \d(\.\d+)?)*", r.detail), r.detail


def test_scores_are_written_for_kept_and_rejected_rows(result):
    for i, sj in enumerate(result["sample_json"]):
        q = Sample.model_validate_json(sj).quality
        assert q is not None and q.model_id.startswith("dnsmos") and {"sig", "bak", "ovrl", "p808"} <= set(q.extra), i
    kept = [Sample.model_validate_json(s).quality.overall for s, r in zip(result["sample_json"], result["reject_json"]) if not r]
    rejected = [Sample.model_validate_json(s).quality.overall for s, r in zip(result["sample_json"], result["reject_json"]) if r]
    assert min(kept) > max(rejected)


def test_bad_rows_are_rejected_and_rejected_rows_pass_untouched(stage):
    ok = _row(0, 0.1 * np.sin(np.linspace(0, 2000, SR)).astype(np.float32))
    empty = _row(1, np.zeros(0, np.float32))
    done = _row(2, np.zeros(SR, np.float32))
    done["reject_json"] = Reject(input="mem://2", stage="segmentation", reason="no_speech").model_dump_json()
    no_sample = _row(3, np.ones(SR, np.float32) * 0.1)
    no_sample["sample_json"] = ""
    out = stage(_batch([ok, empty, done, no_sample]))
    assert json.loads(out["reject_json"][1])["reason"] == "invalid_audio"
    assert out["reject_json"][2] == done["reject_json"] and out["sample_json"][2] == done["sample_json"]
    assert json.loads(out["reject_json"][3])["reason"] == "missing_sample"
    assert Sample.model_validate_json(out["sample_json"][0]).quality is not None


def test_a_threshold_on_a_dimension_the_model_lacks_fails_at_init():
    with pytest.raises(ValueError, match=r"quality\.thresholds\.intelligibility.*does not score"):
        QualityStage(QualityConfig(thresholds={"overall": 2.8, "intelligibility": 3.0}))


def test_failed_thresholds_lists_each_failure_and_treats_nan_as_failing():
    s = QualityScores(model_id="m", overall=2.41, recording_quality=3.5, snr=float("nan"))
    assert failed_thresholds(s, {"overall": 2.8, "recording_quality": 3.2, "snr": 1.0}) == ["overall 2.41 < 2.8", "snr nan < 1"]
