import json

import numpy as np
import pytest

from curation.batch import COLUMNS, audio, live, pcm_bytes
from curation.separation import SeparationStage
from models.signal import resample
from schemas.config import ModelSpec, SeparationConfig
from schemas.sample import Reject, SeparationInfo


def rows(waves: list[np.ndarray], rate: int) -> dict[str, list]:
    n = len(waves)
    batch = {c: [""] * n for c in COLUMNS}
    batch.update(
        key=[f"{i:016x}" for i in range(n)],
        input_index=list(range(n)),
        unit=[0] * n,
        source_uri=[f"/in/{i}.wav" for i in range(n)],
        pcm=[pcm_bytes(w) for w in waves],
        sample_rate=[rate] * n,
        file_rows=[1] * n,
        meta_json=[json.dumps({"audio": {"sample_rate": rate, "channels": 1, "duration_s": len(w) / rate}}) for w in waves],
    )
    return batch


@pytest.fixture(scope="module")
def stage(tiny_htdemucs):
    cfg = SeparationConfig(model=ModelSpec(name="htdemucs", checkpoint=str(tiny_htdemucs), device="cpu", batch_size=2), chunk_s=2.0, overlap_s=0.5)
    return SeparationStage(cfg, output_rate=8000)


def test_live_rows_get_vocals_at_the_output_rate_and_a_separation_record(stage):
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000 * 5 + 3, 16001, 4000)]
    batch = rows(waves, 16000)
    batch["reject_json"][2] = Reject(input="/in/2.wav", stage="decode", reason="too_short").model_dump_json()
    out = stage(batch)
    assert live(out) == [0, 1]
    for i in (0, 1):
        assert out["sample_rate"][i] == 8000
        assert len(audio(out, i)) == len(resample(waves[i], 16000, 8000))
        assert not np.allclose(audio(out, i), resample(waves[i], 16000, 8000), atol=1e-3)  # separated, not merely resampled
        meta = json.loads(out["meta_json"][i])
        assert meta["audio"]["sample_rate"] == 16000  # earlier facts kept
        assert SeparationInfo(**meta["separation"]) == SeparationInfo(model_id="demucs:tiny", chunk_s=2.0, overlap_s=0.5)
    assert out["pcm"][2] == batch["pcm"][2] and out["sample_rate"][2] == 16000  # rejected upstream: untouched


def test_bad_rows_become_rejects_and_spare_the_rest(stage, monkeypatch):
    good = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    batch = rows([np.zeros(0, np.float32), good[:999], good, good[:1234]], 16000)
    batch["meta_json"][2] = "not json"
    # a row the model itself chokes on (here: the 1234-sample one) must not take the batch down with it,
    # nor one it turns into NaN (the 999-sample one)
    real = stage.separator.vocals

    def choke(waves, rate, output_rate):
        if any(len(w) == 1234 for w in waves):
            raise RuntimeError("model failure")
        return [np.full_like(v, np.nan) if len(w) == 999 else v for w, v in zip(waves, real(waves, rate, output_rate))]

    monkeypatch.setattr(stage.separator, "vocals", choke)
    out = stage(batch)
    assert live(out) == []
    details = [Reject.model_validate_json(r) for r in out["reject_json"]]
    assert {r.stage for r in details} == {"separation"} and {r.reason for r in details} == {"separation_failed"}
    assert "empty" in details[0].detail and "non-finite" in details[1].detail
    assert "JSON" in details[2].detail or "Expecting" in details[2].detail
    assert details[3].detail == "RuntimeError: model failure"


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
    assert live(out) == [0] and out["sample_rate"][0] == 8000 and len(audio(out, 0)) == 8000
    assert Reject.model_validate_json(out["reject_json"][1]).reason == "separation_failed"
