from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from models import registry
from models.checkpoints import CheckpointUnavailableError
from models.registry import UnknownModelError
from models.signal import resample
from models.speaker.frontend import mel_filterbank, mel_spectrogram, trim_long_silences
from schemas.config import ModelSpec
from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin

SPEECH = DATA / "speech"


def _clip(name: str) -> np.ndarray:
    x, sr = sf.read(SPEECH / f"pyroomacoustics__cmu_arctic_us_{name}.wav", dtype="float32")
    assert sr == 16000
    return x


@pytest.fixture(scope="module")
def resemblyzer():
    return registry.build(
        "speaker", ModelSpec(name="resemblyzer", device="cpu", batch_size=2), "transcription.speaker_model"
    )


def test_resemblyzer_weights_load_without_importing_the_package(resemblyzer):
    assert resemblyzer.model_id == "resemblyzer"
    assert "resemblyzer" not in sys.modules


def test_mel_front_end_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = _clip("aew_a0001")
    ours = mel_spectrogram(x)
    ref = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=400, hop_length=160, n_mels=40, pad_mode="reflect").T
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-5 * ref.max()
    assert np.allclose(mel_filterbank(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), atol=1e-7)


def test_embeddings_separate_speakers(resemblyzer):
    a1, a2, b1 = _clip("aew_a0001"), _clip("aew_a0002"), _clip("axb_a0004")
    e = resemblyzer.embed([a1, a2, b1], 16000)
    assert e.shape == (3, 256) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    same, different = e[0] @ e[1], e[0] @ e[2]
    assert same > 0.8 and different < 0.7


def test_batching_and_resampling_do_not_change_embeddings(resemblyzer):
    a, b = _clip("aew_a0003"), _clip("axb_a0005")
    together = resemblyzer.embed([a, b], 16000)
    alone = np.concatenate([resemblyzer.embed([a], 16000), resemblyzer.embed([b], 16000)])
    # the same bits whatever the clips are batched with, and whatever the batch size (the network runs on fixed blocks)
    assert np.array_equal(together, alone)
    wide = registry.build("speaker", ModelSpec(name="resemblyzer", device="cpu", batch_size=16))
    crowd = [_clip("aew_a0001"), a, _clip("axb_a0004"), b[: len(b) // 2], b]
    assert np.array_equal(wide.embed(crowd, 16000)[[1, 4]], alone)
    assert resemblyzer.embed([resample(a, 16000, 44100)], 44100)[0] @ together[0] > 0.98


def test_a_call_pads_at_most_one_network_block(resemblyzer, monkeypatch):
    """Ten 1.5 s windows are one partial each: the network sees them as one block of 16, not a padded block per
    `batch_size` clips."""
    x = _clip("aew_a0001")
    windows = [x[k * 8000 : k * 8000 + 24000] for k in range(10)]
    net, rows = resemblyzer.net, []
    monkeypatch.setattr(resemblyzer, "net", lambda mels: rows.append(len(mels)) or net(mels))
    together = resemblyzer.embed(windows, 16000)
    assert rows == [16]
    assert np.array_equal(together[3], resemblyzer.embed([windows[3]], 16000)[0])


def test_wavlm_xvector_from_a_tiny_checkpoint(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    from models.speaker.wavlm import TINY_WAVLM_XVECTOR

    torch.manual_seed(0)
    config = WavLMConfig(**TINY_WAVLM_XVECTOR)
    WavLMForXVector(config).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    embedder = registry.build(
        "speaker",
        ModelSpec(name="wavlm", checkpoint=str(tmp_path), device="cpu", batch_size=2),
        "transcription.speaker_model",
    )
    a, b = _clip("aew_a0001")[:16000], _clip("axb_a0004")[:24000]
    e = embedder.embed([a, b], 16000)
    assert e.shape == (2, 12) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert embedder.model_id == f"wavlm:{tmp_path}"
    # Padding a shorter item in the batch must not change its embedding.
    assert np.allclose(embedder.embed([a], 16000)[0], e[0], atol=1e-4)


def test_preflight_fails_fast(tmp_path):
    setting = "transcription.speaker_model"
    registry.preflight("speaker", ModelSpec(name="resemblyzer"), setting)
    with pytest.raises(CheckpointUnavailableError, match="speaker_model.checkpoint"):
        registry.preflight("speaker", ModelSpec(name="resemblyzer", checkpoint=str(tmp_path / "none.pt")), setting)
    with pytest.raises(UnknownModelError, match=r"transcription\.speaker_model\.name: unknown speaker model 'ecapa'"):
        registry.preflight("speaker", ModelSpec(name="ecapa"), setting)


def test_silence_trimming_keeps_speech_under_a_fifth_of_a_second():
    """A clip shorter than the trimming's dilation (7 windows of 30 ms) once raised IndexError."""
    x = _clip("aew_a0001")
    loud = int(np.argmax(np.abs(x)))
    short = x[max(0, loud - 1200) : max(0, loud - 1200) + 2400]  # 0.15 s around the loudest sample
    trimmed = trim_long_silences(short)
    np.testing.assert_array_equal(trimmed, short)  # too short to trim: returned whole
    long = trim_long_silences(np.concatenate([x, np.zeros(32000, np.float32), x]))
    assert len(x) < len(long) < 2 * len(x) + 32000  # the 2 s pause is cut, the speech kept
