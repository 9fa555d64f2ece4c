"""Throughput of our S2 codec at the released size, with random weights (speed does not depend on them), on one GPU.

Encode and decode of 10 s clips at 44.1 kHz through `S2Codec`, the wrapper users call (padding, host-device copies
and, for encode, the float32 codebook search included), in bf16 autocast, at batch sizes 8, 32 and 128. The codec is
written by `random_codec` + `save_codec` and loaded back through `S2Codec.from_spec`, as a released file would be.
For each row: seconds per batch, x real time (audio seconds per wall second) and MFU: the FLOPs of one batch
(counted on the network by torch.utils.flop_counter.FlopCounterMode: convolutions, matmuls, attention) per second,
over the GPU's peak dense bf16 rate (--peak-tflops; H200: 989).

Training (`--train-batches`): one GAN step of codec training (training.codec.loop.train_step: generator forward
with straight-through quantization, the three discriminators' step, the generator's step with mel, adversarial,
feature-matching, VQ and semantic-distillation losses) at the released size, bf16 autocast, on batches of 1 s crops,
with the released discriminator sizes and a w2v-BERT 2.0-sized teacher of random weights (speed does not depend on
them; none can be downloaded on the GPU machine). Per batch: seconds per step, steps/s, x real time (audio seconds
trained per wall second) and peak GPU memory.

Target: encode >= 2,000x real time on one H200.

Usage:
  python -m scripts.gpu_bench_codec --out bench_out/codec_gpu.json       # on a GPU machine
  python -m scripts.gpu_bench_codec --dry-run                            # tiny codec on CPU, seconds
Options: --batches 8,32,128 --seconds 10 --iters 3 --warmup 1 --device cuda --peak-tflops 989
         --train-batches 4,8,16 --train-seconds 1 (--train-batches '' skips training)
A batch that does not fit in GPU memory is reported as 'OOM' and the run goes on.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.codec import CodecConfig, S2Codec
from models.codec.checkpoint import RandomWeightsWarning, random_codec, save_codec
from schemas.config import ModelSpec

ENCODE_TARGET_X_REAL_TIME = 2000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn, device: torch.device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def network_flops(codec: S2Codec, op: str, inputs: list[np.ndarray]) -> int:
    """FLOPs of the network on one batch, as the wrapper would run it."""
    with (
        torch.inference_mode(),
        torch.autocast(codec.device.type, dtype=codec.dtype, enabled=codec.dtype != torch.float32),
    ):
        with FlopCounterMode(display=False) as counter:
            if op == "encode":
                audio = torch.from_numpy(np.stack(inputs)).to(codec.device)
                codec.model.encode(audio, torch.full((len(inputs),), audio.shape[1], device=codec.device))
            else:
                codec.model.decode(torch.from_numpy(np.stack(inputs).astype(np.int64)).to(codec.device))
    return counter.get_total_flops()


def random_teacher(folder: str, tiny: bool) -> str:
    """A w2v-BERT with random weights saved through save_pretrained: w2v-BERT 2.0's sizes (transformers' defaults),
    or 2 layers of width 32 for a dry run."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64) if tiny else {}
    Wav2Vec2BertModel(Wav2Vec2BertConfig(**sizes)).save_pretrained(folder)
    return folder


def train_rows(args: argparse.Namespace, batches: list[int], device: torch.device) -> list[dict]:
    """Seconds per GAN training step (training.codec.loop.train_step) at each batch of crops."""
    from schemas.codec_training import CodecTrainConfig
    from training.codec.loop import prepare, train_step
    from training.trainer import World

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        small = {"channels": 2, "resolutions": [512, 256], "stft_sizes": [256, 128]} if args.dry_run else {}
        config = CodecTrainConfig.model_validate(
            {
                "data": {"sources": ["unused: the bench feeds crops"], "crop_seconds": args.train_seconds},
                "codec": {"size": "tiny" if args.dry_run else "released"},
                "discriminators": small,
                "semantic": {"teacher": random_teacher(tmp, args.dry_run), "layer": 2 if args.dry_run else 16},
                "runtime": {"dtype": "bfloat16", "device": str(device)},
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomWeightsWarning)
            run = prepare(config, World(0, 1, device))
    cc = run.codec_config
    length = int(args.train_seconds * cc.sample_rate) // cc.frame_length * cc.frame_length
    generator_params = sum(p.numel() for p in run.generator.parameters())
    discriminator_params = sum(p.numel() for p in run.discriminators.parameters())
    for batch in batches:
        x = 0.1 * torch.randn(batch, length, device=device)
        kept = torch.full((batch,), cc.residual_codebooks, device=device)
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = seconds_per_call(functools.partial(train_step, run, x, kept, 0), device, args.warmup, args.iters)
            rows.append(
                {
                    "op": "train",
                    "batch": batch,
                    "s_per_step": seconds,
                    "steps_per_s": 1 / seconds,
                    "x_real_time": batch * length / cc.sample_rate / seconds,
                    "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
                    "generator_params_m": generator_params / 1e6,
                    "discriminator_params_m": discriminator_params / 1e6,
                }
            )
        except torch.OutOfMemoryError:
            rows.append({"op": "train", "batch": batch, "oom": True})
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dry-run", action="store_true", help="tiny codec on CPU, small batches: checks the script in seconds"
    )
    p.add_argument("--batches", default="8,32,128")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's peak dense bf16 TFLOP/s (H200: 989)")
    p.add_argument("--train-batches", default="4,8,16", help="crops per training step ('' = no training rows)")
    p.add_argument("--train-seconds", type=float, default=1.0, help="length of a training crop")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    if args.dry_run:
        args.batches, args.seconds, args.iters, args.device = "1,2", 0.25, 1, "cpu"
        args.train_batches, args.train_seconds = "1,2", 0.1
        torch.set_num_threads(1)  # a check of the script, often on a shared test machine
    batches = [int(b) for b in args.batches.split(",")]
    config = CodecConfig.tiny() if args.dry_run else CodecConfig()

    with tempfile.TemporaryDirectory() as tmp:
        with warnings.catch_warnings():  # random weights are the point here
            warnings.simplefilter("ignore", RandomWeightsWarning)
            save_codec(random_codec(config), tmp)
            codec = S2Codec.from_spec(
                ModelSpec(
                    name="s2-codec", checkpoint=tmp, device=args.device, dtype="bfloat16", batch_size=max(batches)
                )
            )
    device = codec.device
    params = sum(t.numel() for t in codec.model.parameters())
    rng = np.random.default_rng(0)
    clip = int(args.seconds * codec.sample_rate)
    rows = []
    for batch in batches:
        codec.batch_size = batch  # one call is one batch
        clips = [(0.1 * rng.standard_normal(clip)).astype(np.float32) for _ in range(batch)]
        try:
            codes = codec.encode(clips, codec.sample_rate)
            for op, fn, inputs in (
                ("encode", functools.partial(codec.encode, clips, codec.sample_rate), clips),
                ("decode", functools.partial(codec.decode, codes), codes),
            ):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                seconds = seconds_per_call(fn, device, args.warmup, args.iters)
                flops = network_flops(codec, op, inputs)
                rows.append(
                    {
                        "op": op,
                        "batch": batch,
                        "s_per_batch": seconds,
                        "x_real_time": batch * args.seconds / seconds,
                        "tflop_per_batch": flops / 1e12,
                        "mfu": flops / seconds / (args.peak_tflops * 1e12),
                        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30
                        if device.type == "cuda"
                        else None,
                    }
                )
        except torch.OutOfMemoryError:
            rows += [{"op": op, "batch": batch, "oom": True} for op in ("encode", "decode")]
            torch.cuda.empty_cache()
    training = train_rows(args, [int(b) for b in args.train_batches.split(",") if b], device)
    best_encode = max((r["x_real_time"] for r in rows if r["op"] == "encode" and not r.get("oom")), default=0.0)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dry_run": args.dry_run,
        "dtype": str(codec.dtype).replace("torch.", ""),
        "params_m": params / 1e6,
        "clip_seconds": args.seconds,
        "iters": args.iters,
        "peak_tflops": args.peak_tflops,
        "rows": rows,
        "train_rows": training,
        "target": {
            "encode_x_real_time": ENCODE_TARGET_X_REAL_TIME,
            "best_encode_x_real_time": best_encode,
            "met": best_encode >= ENCODE_TARGET_X_REAL_TIME,
        },
    }
    print(
        f"S2 codec, {result['params_m']:.1f}M params, {result['dtype']}, {args.seconds:g} s clips, device {result['device']}"
    )
    print(f"{'op':<8}{'batch':>6}{'s/batch':>10}{'x real time':>13}{'TFLOP/batch':>13}{'MFU':>8}{'peak GiB':>10}")
    for r in rows:
        if r.get("oom"):
            print(f"{r['op']:<8}{r['batch']:>6}{'OOM':>10}")
            continue
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        print(
            f"{r['op']:<8}{r['batch']:>6}{r['s_per_batch']:>10.4f}{r['x_real_time']:>13.0f}{r['tflop_per_batch']:>13.3f}{r['mfu']:>8.1%}{mem:>10}"
        )
    if training:
        print(f"training step (GAN, bf16, {args.train_seconds:g} s crops):")
        print(f"{'batch':>6}{'s/step':>10}{'steps/s':>10}{'x real time':>13}{'peak GiB':>10}")
    for r in training:
        if r.get("oom"):
            print(f"{r['batch']:>6}{'OOM':>10}")
            continue
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        print(f"{r['batch']:>6}{r['s_per_step']:>10.4f}{r['steps_per_s']:>10.2f}{r['x_real_time']:>13.1f}{mem:>10}")
    print(f"best encode {best_encode:.0f}x real time (target >= {ENCODE_TARGET_X_REAL_TIME}x on one H200)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
