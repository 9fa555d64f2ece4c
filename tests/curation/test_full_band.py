"""Full-band shards and codes beside them, through the sequential executor (the same stage objects as on Ray): a
44.1 kHz input yields 44.1 kHz FLAC with its energy above 8 kHz, and with the codec on, KEY.codes.npy whose frames
decode back to the segment's length."""

from __future__ import annotations

import io
import json
import tarfile
import warnings

import numpy as np
import pytest
import soundfile as sf

from curation.executor import SequentialExecutor
from curation.run import curate
from models.signal import resample
from schemas.config import CurateConfig, layered
from tests.conftest import DATA

CLIP = DATA / "fullband" / "whisper__jfk_5s.flac"  # 44.1 kHz speech
QUICK = {"quality": {"enabled": False}, "transcription": {"enabled": False}, "segmentation": {"min_s": 1.0}}


def members(out) -> dict[str, dict[str, bytes]]:
    by_key: dict[str, dict[str, bytes]] = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, ext = m.name.partition(".")
                by_key.setdefault(key, {})[ext] = t.extractfile(m).read()
    return by_key


def high_band_db(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return 10 * np.log10(spectrum[freqs > 8000].sum() / spectrum.sum())


def run(tmp_path, **over):
    cfg = layered(CurateConfig, {"input": str(CLIP), "output": str(tmp_path / "out")}, QUICK, over)
    curate(cfg, SequentialExecutor())
    return members(tmp_path / "out")


def test_a_44k_input_is_written_at_44k_with_its_high_band(tmp_path):
    source, rate = sf.read(CLIP, dtype="int16")
    kept = run(tmp_path, separation={"enabled": False})
    assert kept
    for files in kept.values():
        x, sr = sf.read(io.BytesIO(files["flac"]), dtype="int16")
        record = json.loads(files["json"])
        assert sr == rate == 44100 and record["audio"]["sample_rate"] == 44100
        start = round(record["source"]["start_s"] * sr)
        assert np.array_equal(x, source[start : start + len(x)])  # the source's own samples, band and all
        # the band above 8 kHz that a 16 kHz copy would have lost (a 1961 recording: faint, but there)
        y = x.astype(np.float32) / 32768
        sixteen_k = resample(resample(y, sr, 16000), 16000, sr)
        assert high_band_db(y, sr) > high_band_db(sixteen_k, sr) + 20


def test_the_band_is_measured_and_a_narrow_one_is_rejected_whatever_its_rate(tmp_path):
    import pyarrow.parquet as pq

    from curation.evaluation.bandwidth import narrowed

    source, rate = sf.read(CLIP, dtype="float32")
    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "full.flac", source, rate)
    sf.write(inputs / "call.flac", narrowed(source, rate, 4000), rate)  # a 4 kHz band, upstream resampled to 44.1
    out = tmp_path / "out"
    quality = {"enabled": True, "thresholds": {}, "min_bandwidth_hz": 6000}  # the band alone decides
    over = {"quality": quality, "separation": {"enabled": False}}
    cfg = layered(CurateConfig, {"input": str(inputs), "output": str(out)}, QUICK, over)
    curate(cfg, SequentialExecutor())
    kept = members(out)
    assert kept
    for files in kept.values():
        record = json.loads(files["json"])
        assert record["source"]["uri"].endswith("full.flac") and record["audio"]["bandwidth_hz"] > 11000
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert sorted(m["bandwidth_hz"] for m in manifest) == sorted(
        json.loads(f["json"])["audio"]["bandwidth_hz"] for f in kept.values()
    )
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert rejects and all(r["input"].endswith("call.flac") for r in rejects)
    for r in rejects:
        assert (r["stage"], r["reason"]) == ("quality", "narrow_band"), r
        band = json.loads(r["sample_json"])["audio"]["bandwidth_hz"]
        assert band == pytest.approx(4000, rel=0.1) and r["detail"] == f"bandwidth {band:.0f} Hz < min 6000 Hz"
    assert (out / "report" / "bandwidth.png").stat().st_size > 0


def test_separated_audio_stays_full_band(tmp_path):
    # every input separated whole (quality is off here, and the gate decides on its scores)
    kept = run(tmp_path, separation={"model": {"name": "spleeter", "device": "cpu", "batch_size": 1}, "gate": None})
    assert kept
    for files in kept.values():
        x, sr = sf.read(io.BytesIO(files["flac"]), dtype="float32")
        record = json.loads(files["json"])
        assert sr == 44100 and record["separation"]["model_id"].startswith("spleeter")
        # the separator took the hiss of the old recording, but the vocals keep a band a 16 kHz copy has not
        assert high_band_db(x, sr) > high_band_db(resample(resample(x, sr, 16000), 16000, sr), sr) + 20


def test_codes_go_beside_the_audio_and_decode_to_its_length(tmp_path, tiny_codec_dir):
    from models import registry
    from schemas.config import ModelSpec

    over = {
        "separation": {"enabled": False},
        "codec": {
            "enabled": True,
            "model": {"name": "s2-codec", "checkpoint": str(tiny_codec_dir), "device": "cpu", "batch_size": 4},
        },
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = run(tmp_path, **over)
        codec = registry.build("codec", ModelSpec(name="s2-codec", checkpoint=str(tiny_codec_dir), device="cpu"))
    assert kept
    for files in kept.values():
        assert sorted(files) == ["codes.npy", "flac", "json"]
        codes = np.load(io.BytesIO(files["codes.npy"]), allow_pickle=False)
        record = json.loads(files["json"])
        x, sr = sf.read(io.BytesIO(files["flac"]), dtype="float32")
        frames = int(np.ceil(len(x) * 44100 / sr / codec.frame_length))
        assert codes.dtype == np.int16 and codes.shape == (codec.num_codebooks, frames)
        assert record["codec"] == {
            "model_id": codec.model_id,
            "weights_sha256": codec.weights_sha256,
            "sample_rate": 44100,
            "frame_rate": codec.frame_rate,
            "frames": frames,
            "num_codebooks": codec.num_codebooks,
        }
        assert "random-init" in record["codec"]["model_id"]
        (audio,) = codec.decode([codes])
        assert len(audio) == frames * codec.frame_length and len(audio) - len(x) * 44100 / sr < codec.frame_length


def test_segments_the_codec_cannot_encode_are_rejected_not_crashed(tiny_codec_dir):
    from curation.stages.codec import CodecStage
    from schemas.config import CodecStageConfig, ModelSpec
    from tests.factories import segment_row

    stage = CodecStage(
        CodecStageConfig(enabled=True, model=ModelSpec(name="s2-codec", checkpoint=str(tiny_codec_dir), device="cpu"))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage.setup()
    rng = np.random.default_rng(0)
    rows = [
        segment_row(rng.normal(0, 0.1, 500).astype(np.float32), 16000, 0),  # under one frame (2048 at 44.1 kHz)
        segment_row(np.zeros(16000, np.float32), 16000, 1),  # digital silence
        segment_row(rng.normal(0, 0.1, 16000).astype(np.float32), 16000, 2),
    ]
    out = stage(rows)
    assert [r.reject.reason if r.reject else None for r in out] == ["too_short_for_codec", "silent", None]
    assert out[2].codes.shape == (stage.codec.num_codebooks, int(np.ceil(44100 / stage.codec.frame_length)))
