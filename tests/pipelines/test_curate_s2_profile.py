"""The `s2` profile (HTDemucs, w2v-BERT 2.0 + head, Qwen3-Omni thinker) through the same Ray graph,
with tiny randomly initialised checkpoints loaded through the users' code path."""

import shutil

import pyarrow.parquet as pq
import pytest

from curation.io.audio import decode_file
from jobs.config import profile_layer
from models.quality.training import train_quality_head
from pipelines.curate import run_curation
from schemas.config import CurateConfig, layered
from schemas.sample import Sample
from tests.conftest import DATA
from tests.tiny_models import OPTIONS, TARGET

pytestmark = pytest.mark.ray
CLIPS = ["wenet__librispeech-1995-1837-0001.wav", "lhotse__2412-153948-0000.flac", "speechbrain__LJ050-0131.wav"]


@pytest.fixture(scope="module")
def head(tiny_w2vbert, tmp_path_factory):
    waves = [decode_file(str(DATA / "speech" / c), 16000).audio[: 2 * 16000] for c in CLIPS]
    labels = {"overall": [4.0, 3.0, 2.0], "snr": [4.0, 3.5, 2.5]}
    out = tmp_path_factory.mktemp("head")
    train_quality_head(
        waves, 16000, labels, backbone=str(tiny_w2vbert), out=out, epochs=2, val_fraction=0.34, seed=0, device="cpu"
    )
    return out


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    """A WavLM x-vector with random weights (models.speaker.wavlm.TINY_WAVLM_XVECTOR), saved as a hub checkpoint."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    from models.speaker.wavlm import TINY_WAVLM_XVECTOR

    out = tmp_path_factory.mktemp("wavlm")
    torch.manual_seed(0)
    WavLMForXVector(WavLMConfig(**TINY_WAVLM_XVECTOR)).save_pretrained(out)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(out)
    return out


def test_s2_profile_runs_the_reports_models(
    ray_session, tiny_htdemucs, tiny_w2vbert, head, tiny_qwen3_omni, tiny_wavlm, tiny_codec_dir, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    for c in CLIPS:
        shutil.copy(DATA / "speech" / c, src / c)
    cpu = {"num_gpus": 0, "num_cpus": 0.25}  # 2 CPUs: four model actors, VAD, and room for decode/encode tasks
    cfg = layered(
        CurateConfig,
        profile_layer("s2"),
        {"input": str(src), "output": str(tmp_path / "out"), "ray": {"num_cpus": 2}},
        {
            "decode": {"resources": {"num_cpus": 0.25, "concurrency": 1}},
            "segmentation": {"resources": {"num_cpus": 0.25, "concurrency": 1}},
        },
        {stage: {"resources": cpu} for stage in ("separation", "quality", "transcription", "codec")},
        overrides=[
            # short utterances: the tiny thinker answers two words, taught on audio up to 5 s
            "segmentation.min_s=1.0",
            "segmentation.max_s=3.5",
            f"separation.model.checkpoint={tiny_htdemucs}",
            "separation.chunk_s=4",
            "separation.overlap_s=0.5",
            # the gate sends every utterance through the tiny separator and keeps what comes out
            "separation.gate.min_clean=100",
            "separation.gate.untouched_snr_db=1000",
            "separation.gate.min_snr_db=null",
            f"quality.model.checkpoint={tiny_w2vbert}",
            f"quality.model.options.head={head}",
            "quality.thresholds.overall=-100",
            f"transcription.model.checkpoint={tiny_qwen3_omni}",
            f"transcription.model.options.prompt={OPTIONS['prompt']}",
            f"transcription.model.options.max_new_tokens={OPTIONS['max_new_tokens']}",
            "transcription.max_sidecar_wer=10",
            f"transcription.speaker_model.checkpoint={tiny_wavlm}",
            f"codec.model.checkpoint={tiny_codec_dir}",
        ],
    )
    assert cfg.profile == "s2" and cfg.separation.model.name == "htdemucs"
    summary = run_curation(cfg, progress=False)
    assert summary["inputs"] == 3 and summary["segments_kept"] >= 3, [
        r["detail"] for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    ]
    for row in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist():
        s = Sample.model_validate_json(row["sample_json"])
        assert s.separation.model_id == "demucs:tiny" and s.separation.applied  # the checkpoint file name
        assert s.quality.model_id.startswith("w2vbert") and s.quality.overall is not None and s.quality.snr is not None
        assert s.transcript.model_id.startswith("qwen3-omni") and s.transcript.render() == TARGET
        assert [t.speaker for t in s.transcript.turns] == [0, 1]
        # the model's turns, with source-level ids from the speaker embedder's clustering of each source
        assert s.source_speakers >= 1 and all(t.source_speaker is not None for t in s.transcript.turns)
        assert "random-init" in s.codec.model_id and s.codec.frames > 0  # the s2 profile tokenizes
