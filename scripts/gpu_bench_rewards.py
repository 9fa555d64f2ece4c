"""Throughput of the `s2` profile's rewards at full size on one GPU, random weights (speed does not depend on them),
each through its reward class and model wrapper as the RL loop and the services call them:

  R_STT   TeacherForcedStt over Qwen3OmniTranscriber.teacher_forced_logprobs, around the Qwen3-Omni-30B-A3B thinker
          (its published configuration, scripts/gpu_bench_s2.py THINKER) built at random on the GPU, and a byte-level
          tokenizer whose special tokens sit at Qwen's ids (so the prompt, instruction and target are as long in
          tokens as Qwen's tokenizer makes them: --target-tokens per transcript, speaker markers and a tag included)
  R_Pref  PreferenceReward over W2vBertQualityScorer (w2v-BERT 2.0 size, ~580M parameters, + head)
  R_SIM   SimilarityReward over WavLMSpeakerEmbedder (WavLMForXVector at wavlm-base-plus-sv size, saved at random
          and loaded through the registry); each item's reference voice is embedded too

For each reward and batch size (--batches): seconds per batch and generated audio-hours per GPU-hour (audio seconds
in a batch / seconds per batch). The total: one GPU scoring all three in turn, 1 / sum(1 / rate) at the best batch.

Usage:
  .venv/bin/python -m scripts.gpu_bench_rewards --out bench_out/rewards_gpu.json     # on a GPU machine
  .venv/bin/python -m scripts.gpu_bench_rewards --dry-run                             # tiny models on CPU, seconds
Options: --seconds 10 --batches 8,32 --target-tokens 48 --iters 3 --warmup 1 --device cuda --rewards stt,quality,similarity
`measure(args)` returns the rows, for scripts that combine benchmarks. A batch that does not fit is reported as 'OOM'.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.asr.qwen3_omni import DEFAULT_PROMPT, Qwen3OmniTranscriber
from models.rewards import RewardItem
from models.speaker.wavlm import TINY_WAVLM_XVECTOR
from schemas.config import ModelSpec
from schemas.rewards import AudioLimits, PreferenceConfig, SimilarityConfig, SttConfig
from scripts.gpu_bench_s2 import _free, _row, build_thinker

# Qwen's special tokens and their ids (Qwen3-Omni's tokenizer); the dry run's tiny thinker has its own
QWEN_SPECIALS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|audio_start|>": 151669,
    "<|audio_end|>": 151670,
    "<|audio_pad|>": 151675,
}
TINY_SPECIALS = {
    "<|endoftext|>": 502,
    "<|im_start|>": 500,
    "<|im_end|>": 501,
    "<|audio_start|>": 504,
    "<|audio_end|>": 503,
    "<|audio_pad|>": 505,
}


def byte_tokenizer(specials: dict[str, int]):
    """One token per byte (ids 0-255) plus the chat and audio specials at the given ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))} | specials
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=list(specials)[1:],
    )


def transcriber_from_modules(model, tokenizer, spec: ModelSpec) -> Qwen3OmniTranscriber:
    """The transcriber around a thinker in memory: a 64 GB random model is not written to disk to be loaded again.
    Sets what Qwen3OmniTranscriber.__init__ sets for scoring (the dry run in tests/scripts keeps this in step)."""
    from transformers import WhisperFeatureExtractor

    asr = Qwen3OmniTranscriber.__new__(Qwen3OmniTranscriber)
    asr.spec, asr.model, asr.tokenizer, asr.model_id = spec, model, tokenizer, "qwen3-omni:random"
    asr.device = next(model.parameters()).device
    asr.features = WhisperFeatureExtractor(feature_size=model.config.audio_config.num_mel_bins)
    asr.n_window = model.config.audio_config.n_window
    asr.pad_id = tokenizer.pad_token_id
    return asr


def target_text(n_tokens: int) -> str:
    """A two-speaker rich transcript of n_tokens bytes (one token each here) with a vocal tag."""
    head, middle = "<|speaker:0|>", " [laugh]<|speaker:1|>"
    words = ("so I told him we would meet again " * (n_tokens // 8 + 1)).split()
    text = head + " ".join(words)
    cut = max(len(head) + 1, n_tokens - len(middle) - 3)
    text = text[:cut].rstrip() + middle + "yes"
    return text


def _noise(rng: np.random.Generator, seconds: float, count: int) -> list[np.ndarray]:
    return [(0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32) for _ in range(count)]


def bench_stt(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from models.rewards.stt import TeacherForcedStt

    model = build_thinker(args.dry_run, device, dtype)
    tokenizer = byte_tokenizer(TINY_SPECIALS if args.dry_run else QWEN_SPECIALS)
    # the default instruction's length in Qwen tokens (~1.3 per word), here one byte each
    prompt = DEFAULT_PROMPT[: int(len(DEFAULT_PROMPT.split()) * 1.3)]
    rows = []
    for batch in args.batches:
        spec = ModelSpec(name="qwen3-omni", device=str(device), batch_size=batch, options={"prompt": prompt})
        reward = TeacherForcedStt(transcriber_from_modules(model, tokenizer, spec), SttConfig(), AudioLimits())
        items = [
            RewardItem(x, 16000, target_text(args.target_tokens))
            for x in _noise(np.random.default_rng(5), args.seconds, batch)
        ]

        def score(items=items, reward=reward):
            assert all(r.error is None for r in reward.score(items))

        rows.append(
            _row(
                "R_STT (teacher-forced, Qwen3-Omni thinker)",
                batch,
                batch * args.seconds,
                score,
                device,
                args.warmup,
                args.iters,
                target_tokens=len(target_text(args.target_tokens)),
            )
        )
        _free()
    del model
    _free()
    return rows


def bench_quality(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    from models.quality.head import HeadConfig, QualityHead
    from models.quality.w2vbert import W2vBertQualityScorer
    from models.quality.w2vbert_backbone import W2vBertBackbone
    from models.rewards.preference import PreferenceReward
    from scripts.gpu_bench_quality import TINY as TINY_W2VBERT

    torch.manual_seed(0)
    config = Wav2Vec2BertConfig(**TINY_W2VBERT) if args.dry_run else Wav2Vec2BertConfig()
    backbone = W2vBertBackbone(Wav2Vec2BertModel(config), device, dtype)
    head = QualityHead(
        HeadConfig(
            dims=["overall"],
            in_features=config.hidden_size,
            hidden=256,
            label_mean=[3.0],
            label_std=[1.0],
            thresholds=[3.0],
        )
    )
    rows = []
    for batch in args.batches:
        reward = PreferenceReward(
            W2vBertQualityScorer.from_modules(backbone, head, "bench", batch), PreferenceConfig(), AudioLimits()
        )
        items = [RewardItem(x, 16000) for x in _noise(np.random.default_rng(6), args.seconds, batch)]

        def score(items=items, reward=reward):
            assert all(r.error is None for r in reward.score(items))

        rows.append(
            _row("R_Pref (w2v-BERT 2.0 + head)", batch, batch * args.seconds, score, device, args.warmup, args.iters)
        )
    del backbone
    _free()
    return rows


def bench_similarity(args, device: torch.device) -> list[dict]:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    from models import registry
    from models.rewards.similarity import SimilarityReward

    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        WavLMForXVector(WavLMConfig(**TINY_WAVLM_XVECTOR) if args.dry_run else WavLMConfig()).save_pretrained(tmp)
        Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp)
        for batch in args.batches:
            # float32: transformers' WavLM x-vector head pools in the model's dtype
            embedder = registry.build(
                "speaker",
                ModelSpec(name="wavlm", checkpoint=tmp, device=str(device), batch_size=2 * batch),
                "models.speaker",
            )
            reward = SimilarityReward(embedder, SimilarityConfig(), AudioLimits())
            rng = np.random.default_rng(7)
            items = [
                RewardItem(x, 16000, reference=r)
                for x, r in zip(_noise(rng, args.seconds, batch), _noise(rng, args.seconds, batch))
            ]

            def score(items=items, reward=reward):
                assert all(r.error is None for r in reward.score(items))

            rows.append(
                _row("R_SIM (WavLM x-vector)", batch, batch * args.seconds, score, device, args.warmup, args.iters)
            )
            del embedder, reward
            _free()
    return rows


def total(rows: list[dict]) -> dict | None:
    best: dict[str, dict] = {}
    for r in rows:
        if r.get("audio_hours_per_gpu_hour", 0) > best.get(r["stage"], {}).get("audio_hours_per_gpu_hour", 0):
            best[r["stage"]] = r
    if len(best) < 3:
        return None
    return {
        "audio_hours_per_gpu_hour": 1.0 / sum(1.0 / r["audio_hours_per_gpu_hour"] for r in best.values()),
        "from": {k: f"batch {r['batch']}" for k, r in best.items()},
    }


def measure(args) -> list[dict]:
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    wanted = {s.strip() for s in args.rewards.split(",")}
    rows: list[dict] = []
    if "stt" in wanted:
        rows += bench_stt(args, device, dtype)
    if "quality" in wanted:
        rows += bench_quality(args, device, dtype)
    if "similarity" in wanted:
        rows += bench_similarity(args, device)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dry-run", action="store_true", help="tiny models on CPU, small batches: checks the script in seconds"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of each generated clip (and reference)")
    p.add_argument("--batches", default="8,32", help="items per reward call")
    p.add_argument("--target-tokens", type=int, default=48, help="tokens of each target transcript (R_STT)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda")
    p.add_argument("--rewards", default="stt,quality,similarity")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.dry_run:
        args.device, args.seconds, args.batches, args.iters, args.warmup = "cpu", 2.0, [1, 2], 1, 1
        torch.set_num_threads(1)  # tiny models: threads cost more than they save
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    t0 = time.time()
    rows = measure(args)
    result = {
        "device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu",
        "dry_run": args.dry_run,
        "seconds": args.seconds,
        "rows": rows,
        "total": total(rows),
        "wall_s": time.time() - t0,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(f"s2 rewards, random weights, device {result['device']}, {args.seconds:g} s clips")
    print(f"{'reward':<44}{'batch':>7}{'s/batch':>10}{'audio-h per GPU-h':>20}{'peak GiB':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['stage']:<44}{r['batch']:>7}{r['error']:>10}")
            continue
        mem = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") is not None else "-"
        print(
            f"{r['stage']:<44}{r['batch']:>7}{r['s_per_batch']:>10.3f}{r['audio_hours_per_gpu_hour']:>20.0f}{mem:>10}"
        )
    if result["total"]:
        print(
            f"{'total (one GPU, all three in turn)':<44}{'':>7}{'':>10}{result['total']['audio_hours_per_gpu_hour']:>20.0f}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
