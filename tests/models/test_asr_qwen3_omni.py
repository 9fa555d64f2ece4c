"""Qwen3-Omni wiring on a tiny thinker saved to disk and loaded through the real code path.

The tiny model is trained for a few steps to answer every audio prompt with one fixed annotated
transcript, so generation, decoding, parsing and teacher forcing can be checked end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.asr import load_transcriber, preflight
from models.asr.qwen3_omni import (
    audio_token_count,
    chat_text,
    instruction,
    parse_output,
)
from models.checkpoints import CheckpointUnavailableError
from schemas.config import ModelSpec

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"]
TARGET = "<|speaker:0|>hi [laugh]<|speaker:1|>yo"
OPTIONS = {"prompt": "Transcribe.", "max_new_tokens": 48}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP spin-waits stall them on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _byte_tokenizer():
    """Byte-level BPE without merges: every byte is a token, plus Qwen's chat and audio specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>", additional_special_tokens=SPECIALS[1:])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from transformers import (
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    tokenizer = _byte_tokenizer()
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIALS}
    vocab = len(tokenizer)
    config = Qwen3OmniMoeThinkerConfig(
        audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32, d_model=16,
                          output_dim=64, n_window=50, n_window_infer=100, downsample_hidden_size=8),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=64,
                           deepstack_visual_indexes=[0], num_position_embeddings=16),
        text_config=dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16, moe_intermediate_size=64, num_experts=2, num_experts_per_tok=1,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3], "interleaved": True},
                         pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]),
        audio_token_id=ids["<|audio_pad|>"], audio_start_token_id=ids["<|audio_start|>"],
        vision_start_token_id=vocab + 1, image_token_id=vocab + 2, video_token_id=vocab + 3,
    )
    torch.manual_seed(0)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(config)
    features = WhisperFeatureExtractor(feature_size=128)

    # Teach it one answer, whatever the audio, on prompts laid out exactly as the transcriber lays them out.
    rng = np.random.default_rng(0)
    feats = features([rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 26000)], sampling_rate=16000,
                     padding=True, return_attention_mask=True, return_tensors="pt")
    target = tokenizer(TARGET, add_special_tokens=False)["input_ids"] + [ids["<|im_end|>"]]
    prompts = [tokenizer(chat_text(instruction(OPTIONS), audio_token_count(int(n), 50)), add_special_tokens=False)["input_ids"]
               for n in feats["attention_mask"].sum(-1).tolist()]
    width = max(map(len, prompts)) + len(target)
    input_ids = torch.full((2, width), ids["<|endoftext|>"])
    labels, mask = torch.full((2, width), -100), torch.zeros((2, width), dtype=torch.long)
    for r, p in enumerate(prompts):
        input_ids[r, :len(p) + len(target)] = torch.tensor(p + target)
        mask[r, :len(p) + len(target)] = 1
        labels[r, len(p):len(p) + len(target)] = torch.tensor(target)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        loss = model(input_ids=input_ids, attention_mask=mask, input_features=feats["input_features"],
                     feature_attention_mask=feats["attention_mask"], labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05

    path = tmp_path_factory.mktemp("qwen3_omni_thinker")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    features.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def transcriber(checkpoint):
    return load_transcriber(ModelSpec(name="qwen3-omni", checkpoint=str(checkpoint), device="cpu", batch_size=2, options=OPTIONS))


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
    short = load_transcriber(ModelSpec(name="qwen3-omni", checkpoint=str(checkpoint), device="cpu", options={**OPTIONS, "max_new_tokens": 5}))
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


def test_full_omni_checkpoint_loads_only_the_thinker(checkpoint, tmp_path):
    from transformers import (
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    thinker = Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(checkpoint)
    full = Qwen3OmniMoeForConditionalGeneration(Qwen3OmniMoeConfig(thinker_config=thinker.config.to_dict(), enable_audio_output=False))
    full.thinker.load_state_dict(thinker.state_dict())
    full.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((checkpoint / name).read_bytes())
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen3_omni_moe"
    loaded = load_transcriber(ModelSpec(name="qwen3-omni", checkpoint=str(tmp_path), device="cpu", options=OPTIONS))
    assert loaded.transcribe(_audio(16000), 16000)[0].raw == TARGET


def test_preflight_needs_no_model_load(checkpoint, tmp_path, monkeypatch):
    preflight(ModelSpec(name="qwen3-omni", checkpoint=str(checkpoint)))
    with pytest.raises(CheckpointUnavailableError, match="no config.json"):
        preflight(ModelSpec(name="qwen3-omni", checkpoint=str(tmp_path)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointUnavailableError, match="transcription.model.checkpoint"):
        preflight(ModelSpec(name="qwen3-omni", checkpoint="nobody/not-a-cached-model"))
