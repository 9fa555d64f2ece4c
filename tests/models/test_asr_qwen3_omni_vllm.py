"""The vLLM transcription path, checked on CPU against the transformers path with the tiny thinker: the requests it
builds expand to exactly the prompt the transformers wrapper feeds, and generated text is parsed the same way.
vLLM itself needs a GPU; its output objects are stood in by plain records of the fields the wrapper reads."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models import registry
from models.asr.qwen3_omni import AUDIO_PAD, audio_token_count, parse_output
from models.asr.qwen3_omni_vllm import SAMPLE_RATE, Qwen3OmniVllmTranscriber, requests, results
from models.checkpoints import CheckpointUnavailableError, package_dir
from schemas.config import ModelSpec
from tests.tiny_models import OPTIONS, TARGET


@pytest.fixture(scope="module")
def transformers_path(tiny_qwen3_omni):
    torch.set_num_threads(1)
    spec = ModelSpec(name="qwen3-omni", checkpoint=str(tiny_qwen3_omni), device="cpu", batch_size=2, options=OPTIONS)
    return registry.build("asr", spec, "transcription.model")


def test_requests_expand_to_the_transformers_prompt(transformers_path):
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (30000, 44100)]
    reqs = requests(waves, 22050, OPTIONS, language="en")
    ids, features = transformers_path._inputs(waves, 22050, "en")
    frames = features["feature_attention_mask"].sum(-1).tolist()
    for req, expected, n, wave in zip(reqs, ids, frames, waves):
        audio, rate = req["multi_modal_data"]["audio"]
        assert rate == SAMPLE_RATE and abs(len(audio) - len(wave) * SAMPLE_RATE / 22050) <= 1
        # vLLM replaces the one audio placeholder by as many as the audio yields: the same ids as transformers'
        expanded = req["prompt"].replace(
            AUDIO_PAD, AUDIO_PAD * audio_token_count(int(n), transformers_path.n_window), 1
        )
        assert transformers_path.tokenizer(expanded, add_special_tokens=False)["input_ids"] == expected


def _output(text: str, tokens: int, finish_reason: str) -> SimpleNamespace:
    return SimpleNamespace(
        outputs=[SimpleNamespace(text=text, token_ids=list(range(tokens)), finish_reason=finish_reason)]
    )


def test_generated_text_is_parsed_as_the_transformers_path_parses_it(transformers_path):
    (spoken,) = transformers_path.transcribe(
        [np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1], 16000
    )
    assert spoken.raw == TARGET
    out = results(
        [
            _output(spoken.raw, 9, "stop"),
            _output("<|speaker:0|>hi [laugh", 9, "stop"),
            _output(TARGET[:5], 48, "length"),
        ],
        "qwen3-omni:x",
        48,
    )
    assert out[0].transcript.render() == spoken.transcript.render() == TARGET
    assert out[0] == parse_output(spoken.raw, "qwen3-omni:x")
    assert out[1].transcript is None and "unclosed '['" in out[1].error
    assert out[2].transcript is None and "truncated" in out[2].error


@pytest.mark.skipif(package_dir("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_the_start_up_check_says_how_to_get_it(tiny_qwen3_omni):
    spec = ModelSpec(name="qwen3-omni-vllm", checkpoint=str(tiny_qwen3_omni))
    with pytest.raises(CheckpointUnavailableError, match=r"transcription\.model\.name=qwen3-omni-vllm needs vLLM"):
        Qwen3OmniVllmTranscriber.preflight(spec, "transcription.model")
