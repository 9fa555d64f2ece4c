"""Evaluation during training: a held-out split by source, the held-out loss in metrics.jsonl, and WAV samples
with their prompt text under runtime.out/samples/step-N."""

from __future__ import annotations

import dataclasses
import json

import soundfile

from tests.training.tiny import CODES, N, make_samples, tiny_config, write_shards
from training.data import Stream, shard_urls
from training.trainer import train


def sources(config, split: str) -> set[str]:
    stream = Stream(shard_urls(config.data), config.data, 0, 1, N, CODES, split)
    seen, out = 0, set()
    for sample, _ in stream.samples(None):  # one epoch of the one stream: every shard once
        out.add(sample.source)
        seen += 1
        if seen == 40:
            return out
    return out


def test_the_held_out_split_keeps_each_source_on_one_side(tmp_path):
    index = write_shards(tmp_path / "data", make_samples(24, sources=6), 4)
    config = tiny_config(index, tmp_path / "out", "data.eval_fraction=0.4")
    train_sources, eval_sources = sources(config, "train"), sources(config, "eval")
    assert train_sources and eval_sources and not train_sources & eval_sources
    assert len(train_sources | eval_sources) == 6


def test_eval_loss_lines_and_sample_wavs_appear_in_the_run_folder(tmp_path):
    from models.codec.checkpoint import random_codec, save_codec
    from models.codec.config import CodecConfig

    index = write_shards(tmp_path / "data", make_samples(24, sources=6), 4)
    tiny_codec = dataclasses.replace(
        CodecConfig.tiny(), semantic_codebook_size=CODES, codebook_size=CODES, residual_codebooks=N - 1
    )  # random weights: the audio is noise, its shape and files are what is checked
    codec = save_codec(random_codec(tiny_codec, seed=0), tmp_path / "codec")
    prompts = json.dumps(["<|speaker:0|>the quick brown fox", "<|speaker:1|>a lazy dog"])
    out = tmp_path / "out"
    config = tiny_config(
        index, out, "data.eval_fraction=0.4", "eval.every=2", "eval.batches=2", "eval.samples_every=4",
        f"eval.codec={codec}", "eval.max_new_tokens=6", f"eval.prompts={prompts}",
    )  # fmt: skip
    train(config)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [m for m in lines if "eval_loss" in m]
    assert [m["step"] for m in evals] == [2, 4] and all(m["eval_tokens"] > 0 for m in evals)
    assert all(m["eval_loss"] > 0 for m in evals) and evals[0]["eval_loss"] != evals[1]["eval_loss"]
    assert [m["step"] for m in lines if "loss" in m] == [1, 2, 3, 4]
    folder = out / "samples" / "step-4"
    assert (folder / "0.txt").read_text() == "<|speaker:0|>the quick brown fox\n"
    assert (folder / "1.txt").read_text() == "<|speaker:1|>a lazy dog\n"
    wavs = sorted(folder.glob("*.wav"))
    assert wavs and not (out / "samples" / "step-2").exists()
    for wav in wavs:
        audio, rate = soundfile.read(wav)
        assert rate == tiny_codec.sample_rate
        assert len(audio) > 0 and len(audio) % tiny_codec.frame_length == 0
