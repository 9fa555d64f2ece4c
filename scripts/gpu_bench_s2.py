"""Throughput of the `s2` profile's GPU stages at full size, with random weights (speed does not depend on them).

Stages, each built through the project's own wrappers where they exist and timed on one GPU:

  separation     HTDemucs (demucs' HTDemucs with 4 sources and the published 7.8 s segment, ~42M parameters),
                 saved as a demucs .safetensors file and built through models.registry with the s2 profile's
                 chunking and batch size; inputs of --sep-seconds at 44.1 kHz (what decode yields for it), vocals
                 out at 16 kHz: `DemucsSeparator.vocals`, chunking and resampling included
  quality        w2v-BERT 2.0 (transformers `Wav2Vec2BertConfig()` defaults, ~580M parameters) + quality head:
                 `W2vBertQualityScorer.score` on --seconds clips, the profile's batch size (see
                 scripts/gpu_bench_quality.py for the encoder-only ceiling)
  transcription  the Qwen3-Omni-30B-A3B-Instruct thinker (its published configuration, written out below:
                 48-layer MoE, 128 experts, 8 active, 32-layer audio encoder; ~31.7B parameters, ~64 GB in
                 bf16) initialised at random directly on the GPU in bf16; the prompt laid out as
                 `Qwen3OmniTranscriber` lays it out (audio placeholders sized to the audio, the default
                 instruction's length); greedy generation of exactly --new-tokens tokens, batches --asr-batches
  vllm           the same thinker in vLLM (`load_format="dummy"`: random weights; config, tokenizer and
                 processor from --vllm-model), when vllm is importable; skipped with a message otherwise

For each: seconds per batch and audio-hours per GPU-hour (audio seconds in a batch / seconds per batch).
End to end: one GPU running every stage in turn, 1 / sum(1 / rate) over separation, quality and the fastest
transcription row, as if every input second reached every stage (VAD and the filters only remove work).

Usage:
  .venv/bin/python -m scripts.gpu_bench_s2 --out bench_out/s2_gpu.json        # on a GPU machine (H100 80 GB fits)
  .venv/bin/python -m scripts.gpu_bench_s2 --dry-run                           # tiny models on CPU, seconds
Options: --seconds 10 --asr-batches 8,64,256 --new-tokens 64 --sep-seconds 60 --sep-inputs 8 --iters 3
         --warmup 1 --device cuda --stages separation,quality,transcription,vllm
         --vllm-model Qwen/Qwen3-Omni-30B-A3B-Instruct (hub id or local folder; needs its config, tokenizer
         and processor files, not its weights)
A batch that does not fit in GPU memory is reported as 'OOM' and the run goes on.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from models.asr.qwen3_omni import DEFAULT_PROMPT, audio_token_count
from models.asr.qwen3_omni_tiny import tiny_thinker_config
from models.asr.qwen3_omni_vllm import requests as vllm_requests
from scripts.gpu_bench_quality import TINY as TINY_W2VBERT
from scripts.gpu_bench_quality import _time

# Qwen3-Omni-30B-A3B-Instruct, config.json `thinker_config` (the values that shape compute and memory).
THINKER = dict(
    audio_config=dict(
        num_mel_bins=128,
        encoder_layers=32,
        encoder_attention_heads=20,
        encoder_ffn_dim=5120,
        d_model=1280,
        output_dim=2048,
        n_window=50,
        n_window_infer=800,
        conv_chunksize=500,
        downsample_hidden_size=480,
        max_source_positions=1500,
        activation_function="gelu",
        scale_embedding=False,
    ),
    vision_config=dict(
        depth=27,
        hidden_size=1152,
        intermediate_size=4304,
        num_heads=16,
        out_hidden_size=2048,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        deepstack_visual_indexes=[8, 16, 24],
        num_position_embeddings=2304,
        hidden_act="gelu_pytorch_tanh",
        in_channels=3,
    ),
    text_config=dict(
        vocab_size=152064,
        hidden_size=2048,
        intermediate_size=768,
        moe_intermediate_size=768,
        num_hidden_layers=48,
        num_attention_heads=32,
        num_key_value_heads=4,
        head_dim=128,
        num_experts=128,
        num_experts_per_tok=8,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        max_position_embeddings=65536,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [24, 20, 20],
            "interleaved": True,
        },
        hidden_act="silu",
        attention_bias=False,
        tie_word_embeddings=False,
    ),
    audio_token_id=151675,
    audio_start_token_id=151669,
    image_token_id=151655,
    video_token_id=151656,
    vision_start_token_id=151652,
    position_id_per_seconds=13,
    user_token_id=872,
)
# Qwen's chat tokens: <|im_start|>, <|im_end|>, <|audio_end|>, 'user', 'assistant', '\n'
CHAT_IDS = dict(im_start=151644, im_end=151645, audio_end=151670, user=872, assistant=77091, newline=198)

TINY_THINKER = tiny_thinker_config(
    512, dict(audio=505, audio_start=504, vision_start=506, image=507, video=508, user=400)
)
TINY_CHAT_IDS = dict(im_start=500, im_end=501, audio_end=503, user=400, assistant=401, newline=10)

SOURCES = ["drums", "bass", "other", "vocals"]
TINY_HTDEMUCS = dict(channels=4, depth=2, nfft=512, t_layers=1, t_heads=1, segment=1, dconv_depth=1, dconv_comp=2)


def _noise(rng: np.random.Generator, n: int, count: int) -> list[np.ndarray]:
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(count)]


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _row(name: str, batch: int, audio_s: float, fn, device: torch.device, warmup: int, iters: int, **extra) -> dict:
    """Time fn (one batch) and express it as audio-hours per GPU-hour; an out-of-memory batch becomes a row saying so."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        s = _time(fn, device, warmup, iters)
    except torch.OutOfMemoryError:
        _free()
        return {"stage": name, "batch": batch, "audio_s": audio_s, "error": "OOM", **extra}
    return {
        "stage": name,
        "batch": batch,
        "audio_s": audio_s,
        "s_per_batch": s,
        "audio_hours_per_gpu_hour": audio_s / s,
        "peak_mem_gib": _peak_gib(device),
        **extra,
    }


def bench_separation(args, cfg, device: torch.device) -> list[dict]:
    from demucs.htdemucs import HTDemucs

    from models import registry
    from models.separator.demucs import save_demucs

    torch.manual_seed(0)
    model = (
        HTDemucs(SOURCES, **TINY_HTDEMUCS, samplerate=16000)
        if args.dry_run
        else HTDemucs(SOURCES, segment=Fraction(39, 5))
    )
    params = sum(p.numel() for p in model.parameters()) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "htdemucs_random.safetensors"
        save_demucs(model, path)
        del model
        spec = cfg.separation.model.model_copy(
            update={
                "checkpoint": str(path),
                "device": str(device),
                "batch_size": args.sep_batch or cfg.separation.model.batch_size,
            }
        )
        sep = registry.build("separator", spec, chunk_s=cfg.separation.chunk_s, overlap_s=cfg.separation.overlap_s)
    rate = sep.sample_rate
    waves = _noise(np.random.default_rng(0), int(args.sep_seconds * rate), args.sep_inputs)
    row = _row(
        "separation",
        args.sep_inputs,
        args.sep_inputs * args.sep_seconds,
        lambda: sep.vocals(waves, rate, 16000),  # noqa: F821 (called before the del below)
        device,
        args.warmup,
        args.iters,
        params_m=params,
        model_batch=spec.batch_size,
        chunk_s=cfg.separation.chunk_s,
        input_rate=rate,
    )
    del sep
    _free()
    return [row]


def bench_quality(args, cfg, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    from models.quality.head import HeadConfig, QualityHead
    from models.quality.w2vbert import W2vBertQualityScorer
    from models.quality.w2vbert_backbone import W2vBertBackbone

    torch.manual_seed(0)
    config = Wav2Vec2BertConfig(**TINY_W2VBERT) if args.dry_run else Wav2Vec2BertConfig()
    backbone = W2vBertBackbone(Wav2Vec2BertModel(config), device, dtype)
    params = sum(p.numel() for p in backbone.model.parameters()) / 1e6
    dims = ["overall", "snr", "recording_quality", "intelligibility", "speaker_consistency"]
    head = QualityHead(
        HeadConfig(
            dims=dims,
            in_features=config.hidden_size,
            hidden=256,
            label_mean=[3.0] * 5,
            label_std=[1.0] * 5,
            thresholds=[3.0] * 5,
        )
    )
    batch = args.quality_batch or cfg.quality.model.batch_size
    scorer = W2vBertQualityScorer.from_modules(backbone, head, "bench", batch_size=batch)
    waves = _noise(np.random.default_rng(1), int(args.seconds * 16000), batch)
    row = _row(
        "quality",
        batch,
        batch * args.seconds,
        lambda: scorer.score(waves, 16000),  # noqa: F821 (called before the del below)
        device,
        args.warmup,
        args.iters,
        params_m=params,
    )
    del scorer, backbone
    _free()
    return [row]


def build_thinker(dry_run: bool, device: torch.device, dtype: torch.dtype):
    """The thinker at random, built on the device in its dtype (a 64 GB model never exists on the host)."""
    from transformers import Qwen3OmniMoeThinkerConfig, Qwen3OmniMoeThinkerForConditionalGeneration

    config = Qwen3OmniMoeThinkerConfig(**(TINY_THINKER if dry_run else THINKER))
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3OmniMoeThinkerForConditionalGeneration._from_config(config, dtype=dtype)
    return model.to(device).eval()  # already there: .to() only guards against a transformers that ignores the context


def thinker_inputs(model, waves: list[np.ndarray], chat: dict, device: torch.device, dtype: torch.dtype) -> dict:
    """Prompts as Qwen3OmniTranscriber lays them out: <|im_start|>user, audio start, one placeholder per audio
    token, audio end, the instruction (random ids, as many as the default instruction has words x 1.3), end of
    turn, <|im_start|>assistant."""
    from transformers import WhisperFeatureExtractor

    cfg = model.config
    feats = WhisperFeatureExtractor(feature_size=cfg.audio_config.num_mel_bins)(
        waves, sampling_rate=16000, padding=True, truncation=False, return_attention_mask=True, return_tensors="pt"
    )
    rng = np.random.default_rng(2)
    n_instruction = int(len(DEFAULT_PROMPT.split()) * 1.3)
    vocab_low = min(1000, cfg.text_config.vocab_size // 4)
    rows = []
    for n in feats["attention_mask"].sum(-1).tolist():
        audio = (
            [cfg.audio_start_token_id]
            + [cfg.audio_token_id] * audio_token_count(int(n), cfg.audio_config.n_window)
            + [chat["audio_end"]]
        )
        words = rng.integers(vocab_low, min(cfg.text_config.vocab_size, 150000) - 1, n_instruction).tolist()
        rows.append(
            [
                chat["im_start"],
                chat["user"],
                chat["newline"],
                *audio,
                *words,
                chat["im_end"],
                chat["newline"],
                chat["im_start"],
                chat["assistant"],
                chat["newline"],
            ]
        )
    width = max(map(len, rows))
    ids = torch.tensor([[chat["im_end"]] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "input_features": feats["input_features"].to(device, dtype),
        "feature_attention_mask": feats["attention_mask"].to(device),
        "prompt_tokens": width,
    }


def bench_transcription(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    model = build_thinker(args.dry_run, device, dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    chat = TINY_CHAT_IDS if args.dry_run else CHAT_IDS
    rng = np.random.default_rng(3)
    rows = []
    for batch in args.asr_batches:
        try:
            inputs = thinker_inputs(model, _noise(rng, int(args.seconds * 16000), batch), chat, device, dtype)
        except torch.OutOfMemoryError:
            _free()
            rows.append(
                {
                    "stage": "transcription (transformers)",
                    "batch": batch,
                    "audio_s": batch * args.seconds,
                    "error": "OOM",
                }
            )
            continue
        prompt_tokens = inputs.pop("prompt_tokens")

        @torch.inference_mode()
        def generate(inputs=inputs):
            out = model.generate(  # noqa: F821 (called before the del below)
                **inputs,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=chat["im_end"],
                eos_token_id=chat["im_end"],
            )
            assert out.shape[1] == inputs["input_ids"].shape[1] + args.new_tokens  # a fixed output length

        rows.append(
            _row(
                "transcription (transformers)",
                batch,
                batch * args.seconds,
                generate,
                device,
                args.warmup,
                args.iters,
                params_b=params,
                prompt_tokens=prompt_tokens,
                new_tokens=args.new_tokens,
            )
        )
        del inputs
        _free()
    del model
    _free()
    return rows


def bench_vllm(args) -> list[dict]:
    """The thinker in vLLM with dummy (random) weights; [] with a message when vLLM or the model files are missing."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        print("vllm: not installed (pip install -e '.[vllm]' on a GPU machine): vLLM measurement skipped")
        return []
    try:
        llm = LLM(
            model=args.vllm_model,
            load_format="dummy",
            dtype="bfloat16",
            max_model_len=4096,
            seed=0,
            max_num_seqs=max(args.asr_batches),
            limit_mm_per_prompt={"audio": 1, "image": 0, "video": 0},
        )
    except Exception as exc:  # no config/tokenizer reachable, unsupported architecture in this vLLM, ...
        print(
            f"vllm: could not start {args.vllm_model!r} ({type(exc).__name__}: {str(exc)[:300]}): vLLM measurement skipped"
        )
        return []
    params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, min_tokens=args.new_tokens, ignore_eos=True)
    rng = np.random.default_rng(4)
    rows = []
    for batch in args.asr_batches:
        # the requests the pipeline's vLLM transcriber sends (models/asr/qwen3_omni_vllm.py)
        requests = vllm_requests(_noise(rng, int(args.seconds * 16000), batch), 16000, {})

        def generate(requests=requests):
            out = llm.generate(requests, params, use_tqdm=False)
            assert all(len(o.outputs[0].token_ids) == args.new_tokens for o in out)

        rows.append(
            _row(
                "transcription (vLLM)",
                batch,
                batch * args.seconds,
                generate,
                torch.device("cpu"),
                args.warmup,
                args.iters,
                new_tokens=args.new_tokens,
            )
        )
    return rows


def end_to_end(rows: list[dict]) -> dict | None:
    best = {}
    for r in rows:
        if "audio_hours_per_gpu_hour" not in r:
            continue
        kind = "transcription" if r["stage"].startswith("transcription") else r["stage"]
        if r["audio_hours_per_gpu_hour"] > best.get(kind, {}).get("audio_hours_per_gpu_hour", 0):
            best[kind] = r
    if not {"separation", "quality", "transcription"} <= set(best):  # codec encode joins when measured
        return None
    rate = 1.0 / sum(1.0 / r["audio_hours_per_gpu_hour"] for r in best.values())
    return {"audio_hours_per_gpu_hour": rate, "from": {k: f"{r['stage']} batch {r['batch']}" for k, r in best.items()}}


def sub_bench(main_fn, args, extra: list[str]) -> dict:
    """Run a sibling GPU script (its own arguments and JSON) and return its result."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        main_fn(["--out", str(out), *(["--dry-run"] if args.dry_run else ["--device", args.device]), *extra])
        return json.loads(out.read_text())


def codec_rows(codec: dict) -> list[dict]:
    """The codec's encode as a stage of the graph (tokenization), in the table's terms."""
    return [
        {"stage": "codec encode", "batch": r["batch"], "s_per_batch": r["s_per_batch"], "audio_hours_per_gpu_hour": r["x_real_time"], "mfu": r.get("mfu")}
        for r in codec["rows"]
        if r["op"] == "encode" and not r.get("oom")
    ]  # fmt: skip


def print_table(result: dict) -> None:
    print(
        f"s2 profile GPU stages, random weights, device {result['device']}, {result['dtype']}, {result['seconds']:g} s clips"
    )
    print(f"{'stage':<30}{'batch':>7}{'s/batch':>10}{'audio-h per GPU-h':>20}{'peak GiB':>10}")
    for r in result["rows"]:
        if "error" in r:
            print(f"{r['stage']:<30}{r['batch']:>7}{r['error']:>10}")
            continue
        mem = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") is not None else "-"
        print(
            f"{r['stage']:<30}{r['batch']:>7}{r['s_per_batch']:>10.3f}{r['audio_hours_per_gpu_hour']:>20.0f}{mem:>10}"
        )
    e2e = result["end_to_end"]
    if e2e:
        print(
            f"{'end to end (one GPU)':<30}{'':>7}{'':>10}{e2e['audio_hours_per_gpu_hour']:>20.0f}   ({', '.join(e2e['from'].values())})"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dry-run", action="store_true", help="tiny models on CPU, small batches: checks the script in seconds"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="clip length for quality and transcription")
    p.add_argument("--asr-batches", default="8,64,256")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--sep-seconds", type=float, default=60.0, help="length of each separation input")
    p.add_argument("--sep-inputs", type=int, default=8, help="separation inputs per call")
    p.add_argument("--sep-batch", type=int, default=None, help="chunks per model call (default: the s2 profile's)")
    p.add_argument("--quality-batch", type=int, default=None, help="clips per call (default: the s2 profile's)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda")
    p.add_argument("--stages", default="separation,quality,transcription,vllm,codec,rewards")
    p.add_argument(
        "--rewards", default="stt,quality,similarity", help="the s2 rewards to measure (scripts/gpu_bench_rewards.py)"
    )
    p.add_argument("--vllm-model", default="Qwen/Qwen3-Omni-30B-A3B-Instruct")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    args.asr_batches = [int(b) for b in args.asr_batches.split(",")]
    stages = {s.strip() for s in args.stages.split(",")}
    if args.dry_run:
        args.device, args.seconds, args.asr_batches, args.new_tokens = "cpu", 2.0, [1, 2], 4
        args.sep_seconds, args.sep_inputs, args.iters, args.warmup = 3.0, 2, 1, 1
        args.quality_batch = args.quality_batch or 2
        torch.set_num_threads(1)  # tiny models: threads cost more than they save

    from jobs.config import curate_config

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = curate_config("s2", direct={"input": "-", "output": "-"})
    rows: list[dict] = []
    t0 = time.time()
    if "separation" in stages:
        rows += bench_separation(args, cfg, device)
    if "quality" in stages:
        rows += bench_quality(args, cfg, device, dtype)
    if "transcription" in stages:
        rows += bench_transcription(args, device, dtype)
    if "vllm" in stages:
        if args.dry_run:
            print("vllm: not measured in a dry run")
        else:
            rows += bench_vllm(args)
    extra = {}
    if "codec" in stages:
        from scripts.gpu_bench_codec import main as codec_main

        extra["codec"] = sub_bench(codec_main, args, [])
        rows += codec_rows(extra["codec"])
    if "rewards" in stages:
        from scripts.gpu_bench_rewards import main as rewards_main

        extra["rewards"] = sub_bench(rewards_main, args, ["--rewards", args.rewards])
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dry_run": args.dry_run,
        "dtype": str(dtype).replace("torch.", ""),
        "seconds": args.seconds,
        "new_tokens": args.new_tokens,
        "iters": args.iters,
        "rows": rows,
        "end_to_end": end_to_end(rows),
        **extra,
        "wall_s": time.time() - t0,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print_table(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
