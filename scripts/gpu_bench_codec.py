"""Throughput of our S2 codec at the released size, with random weights (speed does not depend on them), on one GPU.

Encode and decode of 10 s clips at 44.1 kHz through `S2Codec`, the wrapper users call (padding, host-device copies
and, for encode, the float32 codebook search included), in bf16 autocast, at batch sizes 8, 32 and 128. The codec is
written by `random_codec` + `save_codec` and loaded back through `S2Codec.from_spec`, as a released file would be.
For each row: seconds per batch, x real time (audio seconds per wall second) and MFU: the FLOPs of one batch
(counted on the network by torch.utils.flop_counter.FlopCounterMode: convolutions, matmuls, attention) per second,
over the GPU's peak dense bf16 rate (--peak-tflops; H200: 989).

Target: encode >= 2,000x real time on one H200.

Usage:
  python -m scripts.gpu_bench_codec --out bench_out/codec_gpu.json       # on a GPU machine
  python -m scripts.gpu_bench_codec --dry-run                            # tiny codec on CPU, seconds
Options: --batches 8,32,128 --seconds 10 --iters 3 --warmup 1 --device cuda --peak-tflops 989
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
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    if args.dry_run:
        args.batches, args.seconds, args.iters, args.device = "1,2", 0.25, 1, "cpu"
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
    print(f"best encode {best_encode:.0f}x real time (target >= {ENCODE_TARGET_X_REAL_TIME}x on one H200)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
