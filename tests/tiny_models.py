"""Tiny randomly initialised checkpoints of the heavy models, saved to disk so that tests load them
through the same code path as users (`from_pretrained(path)`, a demucs safetensors file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.asr.qwen3_omni import audio_token_count, chat_text, instruction
from models.asr.qwen3_omni_tiny import tiny_thinker_config

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"]
TARGET = "<|speaker:0|>hi [laugh]<|speaker:1|>yo"
OPTIONS = {"prompt": "Transcribe.", "max_new_tokens": 48}


def _byte_tokenizer():
    """Byte-level BPE without merges: every byte is a token, plus Qwen's chat and audio specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>", additional_special_tokens=SPECIALS[1:]
    )


def build_qwen3_omni_thinker(path: Path) -> Path:
    """A tiny thinker trained for a few steps to answer every audio prompt with TARGET."""
    from transformers import (
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    tokenizer = _byte_tokenizer()
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIALS}
    vocab = len(tokenizer)
    config = Qwen3OmniMoeThinkerConfig(
        **tiny_thinker_config(
            vocab,
            dict(
                audio=ids["<|audio_pad|>"],
                audio_start=ids["<|audio_start|>"],
                vision_start=vocab + 1,
                image=vocab + 2,
                video=vocab + 3,
                pad=ids["<|endoftext|>"],
                eos=ids["<|im_end|>"],
            ),
        )
    )
    torch.manual_seed(0)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(config)
    features = WhisperFeatureExtractor(feature_size=128)

    # Teach it one answer, whatever the audio, on prompts laid out exactly as the transcriber lays them out.
    rng = np.random.default_rng(0)
    lengths = (16000, 26000, 48000, 80000)  # 1 to 5 s: the prompt grows with the audio, so teach all sizes
    feats = features(
        [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths],
        sampling_rate=16000,
        padding=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    target = tokenizer(TARGET, add_special_tokens=False)["input_ids"] + [ids["<|im_end|>"]]
    prompts = [
        tokenizer(chat_text(instruction(OPTIONS), audio_token_count(int(n), 50)), add_special_tokens=False)["input_ids"]
        for n in feats["attention_mask"].sum(-1).tolist()
    ]
    width = max(map(len, prompts)) + len(target)
    input_ids = torch.full((len(lengths), width), ids["<|endoftext|>"])
    labels, mask = torch.full((len(lengths), width), -100), torch.zeros((len(lengths), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        input_ids[r, : len(p) + len(target)] = torch.tensor(p + target)
        mask[r, : len(p) + len(target)] = 1
        labels[r, len(p) : len(p) + len(target)] = torch.tensor(target)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model(
            input_ids=input_ids,
            attention_mask=mask,
            input_features=feats["input_features"],
            feature_attention_mask=feats["attention_mask"],
            labels=labels,
        ).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05, loss.item()

    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    features.save_pretrained(path)
    return path


def build_w2vbert(path: Path) -> Path:
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    torch.manual_seed(0)
    config = Wav2Vec2BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_depthwise_kernel_size=5
    )
    Wav2Vec2BertModel(config).save_pretrained(path)
    return path


def build_htdemucs(path: Path) -> Path:
    """A tiny 16 kHz HTDemucs (7k parameters) saved as a demucs .safetensors checkpoint. It is taught for
    40 steps to return its input as 'vocals', so that the stages after separation still receive speech."""
    from demucs.htdemucs import HTDemucs

    from curation.io.audio import decode_file
    from models.separator.demucs import save_demucs
    from tests.conftest import DATA

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        channels=4,
        depth=2,
        nfft=512,
        t_layers=1,
        t_heads=1,
        segment=1,
        samplerate=16000,
        dconv_depth=1,
        dconv_comp=2,
    )
    x = decode_file(str(DATA / "speech" / "wenet__librispeech-1995-1837-0001.wav"), 16000).audio
    clips = torch.from_numpy(np.stack([x[i : i + 16000] for i in range(8000, len(x) - 16000, 24000)]))[:, None].repeat(
        1, 2, 1
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        out = model(clips)
        loss = (out[:, 3] - clips).abs().mean() + out[:, :3].abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_demucs(model.eval(), path)
    return path
