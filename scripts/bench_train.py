"""`make bench-train`: how many samples per second the training loader feeds, on CPU, from real shards.

The shards are the curated and tokenized examples/ clips that `make train-demo` writes (made first when missing:
scripts/train_demo.py --data-only), read by training.data.Loader exactly as the trainer reads them: tar streaming,
KEY.json and KEY.codes.npy parsing, references, prompt building with the tokenizer, shuffling and packing. The
loader cycles through the epochs for --seconds per setting of loader workers.

The bar: ten times what one GPU consumes. The GPU's rate comes from scripts/gpu_bench_train.py's JSON (--gpu-bench,
its best row: samples/s at its measured tokens/s); without one, from training.flops for S2-Pro at 50% MFU of an
H200 on the same synthetic samples (an estimate, said so in the output).

  .venv/bin/python -m scripts.bench_train [--index train_out/curated/index.json] [--seconds 20] [--workers 0,2]
      [--seq-len 8192] [--gpu-bench bench_out/train_gpu.json] [--out bench_out/train_loader.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

H200_PEAK = 989.4e12
TARGET_MFU = 0.5


def gpu_rate(gpu_bench: str | None) -> tuple[float, str]:
    """Samples per second one GPU consumes, and where the figure comes from."""
    if gpu_bench and Path(gpu_bench).is_file():
        result = json.loads(Path(gpu_bench).read_text())
        rows = [r for r in result["rows"] if r["result"] == "ok"]
        if rows and not result.get("dry_run"):
            best = max(rows, key=lambda r: r["tokens_per_s"])
            return best["samples_per_s"], f"measured on {result['device']} ({gpu_bench})"
    from scripts.gpu_bench_train import S2_PRO, TEXT_TOKENS
    from training.flops import step_flops

    frames = ref = 215
    tokens = sum(TEXT_TOKENS) + ref + frames + 1
    per_sample = step_flops(S2_PRO, [tokens], frames + 1, frames)
    rate = TARGET_MFU * H200_PEAK / per_sample
    return (
        rate,
        f"estimated: S2-Pro at {TARGET_MFU:.0%} MFU of an H200 ({rate * tokens:,.0f} tokens/s), no GPU measured",
    )


def measure(index: str, workers: int, seconds: float, seq_len: int) -> dict:
    from models.dual_ar.tokens import TokenIds, byte_level_tokenizer, extend_tokenizer
    from schemas.training import DataConfig
    from training.data import Loader

    tokenizer = extend_tokenizer(byte_level_tokenizer(), 4096)
    ids = TokenIds.from_tokenizer(tokenizer, 4096)
    config = DataConfig(index=index, seq_len=seq_len, shuffle_buffer=1000, num_workers=workers)
    loader = Loader(config, tokenizer, ids, 10, micro_batch=1)
    next(loader)  # workers started, first shards read
    samples = tokens = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(loader)
        samples += batch.samples
        tokens += int((batch.segment_ids != 0).sum())
    elapsed = time.perf_counter() - start
    return {
        "workers": workers,
        "samples_per_s": samples / elapsed,
        "tokens_per_s": tokens / elapsed,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="train_out/curated/index.json", help="tokenized shards' index.json")
    p.add_argument("--seconds", type=float, default=20.0, help="time per setting")
    p.add_argument("--workers", default="0,2", help="loader worker counts to measure, comma-separated")
    p.add_argument("--seq-len", type=int, default=8192)
    p.add_argument("--gpu-bench", default="bench_out/train_gpu.json", help="scripts.gpu_bench_train's JSON")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if not Path(args.index).is_file():
        from scripts import train_demo

        train_demo.main(["--out", str(Path(args.index).parent.parent), "--data-only"])
    need_per_gpu, source = gpu_rate(args.gpu_bench)
    rows = [measure(args.index, int(w), args.seconds, args.seq_len) for w in args.workers.split(",")]
    print(f"loader on CPU from {args.index}, rows of {args.seq_len} tokens")
    print(f"{'workers':>8} {'samples/s':>10} {'tokens/s':>10}")
    for r in rows:
        print(f"{r['workers']:>8} {r['samples_per_s']:>10.1f} {r['tokens_per_s']:>10.0f}")
    best = max(rows, key=lambda r: r["samples_per_s"])
    ratio = best["samples_per_s"] / need_per_gpu
    verdict = "meets" if ratio >= 10 else "misses"
    print(
        f"one GPU consumes {need_per_gpu:.1f} samples/s ({source}); the loader feeds {ratio:.1f}x that: "
        f"{verdict} the bar of 10x"
    )
    result = {
        "index": args.index,
        "rows": rows,
        "gpu_samples_per_s": need_per_gpu,
        "gpu_source": source,
        "ratio": ratio,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
