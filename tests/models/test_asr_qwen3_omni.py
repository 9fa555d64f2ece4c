"""Qwen3-Omni wiring on a tiny thinker saved to disk and loaded through the real code path.

The tiny model is trained for a few steps to answer every audio prompt with one fixed annotated
transcript, so generation, decoding, parsing and teacher forcing can be checked end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import registry
from models.asr.qwen3_omni import parse_output
from models.checkpoints import CheckpointUnavailableError
from schemas.config import ModelSpec
from tests.tiny_models import OPTIONS, TARGET

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin


@pytest.fixture(scope="module")
def checkpoint(tiny_qwen3_omni):
    return tiny_qwen3_omni


@pytest.fixture(scope="module")
def transcriber(checkpoint):
    return registry.build(
        "asr",
        ModelSpec(name="qwen3-omni", checkpoint=str(checkpoint), device="cpu", batch_size=2, options=OPTIONS),
        "transcription.model",
    )


def _audio(*lengths: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]


def test_generates_and_parses_batched(transcriber):
    results = transcriber.transcribe(_audio(30000, 20000, 44100), 22050)  # 3 items in batches of 2, resampled
    assert [r.error for r in results] == [None] * 3
    for r in results:
        assert r.raw == TARGET
        assert r.transcript.render() == TARGET
        assert r.transcript.speakers() == [0, 1]
        assert r.transcript.model_id == f"qwen3-omni:{transcriber.spec.checkpoint}"


def test_truncated_generation_is_an_error(checkpoint):
    short = registry.build(
        "asr",
        ModelSpec(
            name="qwen3-omni", checkpoint=str(checkpoint), device="cpu", options={**OPTIONS, "max_new_tokens": 5}
        ),
    )
    (r,) = short.transcribe(_audio(16000), 16000)
    assert r.transcript is None and "truncated" in r.error and r.raw == TARGET[:5]


def test_teacher_forced_logprobs_score_each_transcript_token(transcriber):
    other = "<|speaker:1|>no"
    scores = transcriber.teacher_forced_logprobs(_audio(16000, 24000, 20000), 16000, [TARGET, other, TARGET])
    n_tokens = [len(transcriber.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (TARGET, other, TARGET)]
    assert [s.shape for s in scores] == [(n,) for n in n_tokens]
    assert all(np.all(s <= 0) for s in scores)
    assert scores[0].mean() > -0.1 and scores[2].mean() > -0.1  # the answer it was taught
    assert scores[1].mean() < scores[0].mean() - 1.0


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "empty output"),
        ("<|speaker:0|>hi [laugh", "unclosed '[' at position 16"),
        ("<|speaker:0|>hi<|im_start|>", "malformed speaker marker at position 15"),
    ],
)
def test_malformed_output_becomes_an_error(raw, error):
    r = parse_output(raw, "m")
    assert r.transcript is None and r.raw == raw and r.error.startswith(error)


def test_plain_text_output_is_one_speaker_unless_strict():
    assert parse_output("Hello [Sighs] there", "m").transcript.render() == "<|speaker:0|>Hello [sigh] there"
    assert "before the first speaker marker" in parse_output("Hello", "m", implicit_speaker=False).error


def test_the_model_names_the_language_first_and_it_becomes_the_transcripts():
    from models.asr.qwen3_omni import DEFAULT_PROMPT, LANGUAGE_REQUEST, instruction

    r = parse_output("<|language:de|><|speaker:0|>Guten Morgen [laugh]", "m", language="en")
    assert r.transcript.language == "de" and r.transcript.render() == "<|speaker:0|>Guten Morgen [laugh]"
    assert parse_output(" <|language: Chinese |>你好", "m").transcript.language == "zh"  # a name, mapped to its code
    assert parse_output("<|speaker:0|>hello", "m", language="en").transcript.language == "en"  # no marker: as asked
    assert parse_output("<|language:??|>hello", "m").transcript.language is None
    assert parse_output("<|language:en|>", "m").error == "empty output"
    # generation asks for it with the default prompt only; scoring a given transcript never does
    assert instruction({}, generate=True) == DEFAULT_PROMPT + LANGUAGE_REQUEST
    assert instruction({}) == DEFAULT_PROMPT and instruction({"prompt": "Transcribe."}, generate=True) == "Transcribe."
    assert LANGUAGE_REQUEST in instruction({"prompt": "T.", "detect_language": True}, "en", generate=True)


def test_full_omni_checkpoint_loads_only_the_thinker(checkpoint, tmp_path):
    from transformers import (
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    thinker = Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(checkpoint)
    full = Qwen3OmniMoeForConditionalGeneration(
        Qwen3OmniMoeConfig(thinker_config=thinker.config.to_dict(), enable_audio_output=False)
    )
    full.thinker.load_state_dict(thinker.state_dict())
    full.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((checkpoint / name).read_bytes())
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen3_omni_moe"
    loaded = registry.build(
        "asr", ModelSpec(name="qwen3-omni", checkpoint=str(tmp_path), device="cpu", options=OPTIONS)
    )
    assert loaded.transcribe(_audio(16000), 16000)[0].raw == TARGET


def test_preflight_needs_no_model_load(checkpoint, tmp_path, monkeypatch):
    registry.preflight("asr", ModelSpec(name="qwen3-omni", checkpoint=str(checkpoint)), "transcription.model")
    with pytest.raises(CheckpointUnavailableError, match="no config.json"):
        registry.preflight("asr", ModelSpec(name="qwen3-omni", checkpoint=str(tmp_path)), "transcription.model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointUnavailableError, match="transcription.model.checkpoint"):
        registry.preflight(
            "asr", ModelSpec(name="qwen3-omni", checkpoint="nobody/not-a-cached-model"), "transcription.model"
        )
