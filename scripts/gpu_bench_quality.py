"""Throughput of the w2v-BERT quality scorer: audio-hours per GPU-hour, feature extraction included.

Builds the full-size w2v-BERT 2.0 architecture (transformers `Wav2Vec2BertConfig()` defaults: 24 conformer
layers, hidden 1024, ~580M parameters; random weights, which do not change the speed) plus a quality head,
and times three things on the same batch (default 64 clips x 10 s):

  fbank_only    the GPU filterbank (host->device copy + features)
  forward_only  the plain transformers forward `model(input_features, attention_mask)` on features already on
                the GPU, under the same autocast: the ceiling
  end_to_end    `W2vBertQualityScorer.score(numpy waveforms, 16000)`: copy, GPU fbank, encoder, pooling, head,
                results back as QualityScores

and reports audio-hours per GPU-hour for each, plus end_to_end / forward_only (target >= 0.75).

Usage:
  .venv/bin/python -m scripts.gpu_bench_quality --out bench_out/quality_gpu.json    # on a GPU machine
  .venv/bin/python -m scripts.gpu_bench_quality --dry-run                            # tiny model on CPU, seconds
Options: --batch 64 --seconds 10 --iters 10 --warmup 3 --dtype bfloat16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.quality.head import HeadConfig, QualityHead
from models.quality.w2vbert import W2vBertQualityScorer
from models.quality.w2vbert_backbone import W2vBertBackbone

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_depthwise_kernel_size=5
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Mean seconds per call after warm-up."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dry-run", action="store_true", help="tiny config on CPU, small batch: checks the script in seconds"
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.dry_run:
        args.device, args.batch, args.seconds, args.iters, args.warmup = "cpu", 2, 2.0, 3, 2
        torch.set_num_threads(1)  # a tiny model: threads cost more than they save

    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype) if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    config = Wav2Vec2BertConfig(**TINY) if args.dry_run else Wav2Vec2BertConfig()
    backbone = W2vBertBackbone(Wav2Vec2BertModel(config), device, dtype)
    n_params = sum(t.numel() for t in backbone.model.parameters())
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
    scorer = W2vBertQualityScorer.from_modules(backbone, head, "bench", batch_size=args.batch)

    rng = np.random.default_rng(0)
    n = int(args.seconds * 16000)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(args.batch)]
    features, mask = backbone.fbank(waves)

    @torch.inference_mode()
    def forward_only():
        with backbone.autocast():
            backbone.model(input_features=features, attention_mask=mask)

    @torch.inference_mode()
    def fbank_only():
        backbone.fbank(waves)

    audio_s = args.batch * args.seconds
    rows = {}
    for name, fn in (
        ("fbank_only", fbank_only),
        ("forward_only", forward_only),
        ("end_to_end", lambda: scorer.score(waves, 16000)),
    ):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        s = _time(fn, device, args.warmup, args.iters)
        rows[name] = {
            "s_per_batch": s,
            "audio_hours_per_gpu_hour": audio_s / s,
            "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        }
    ratio = rows["forward_only"]["s_per_batch"] / rows["end_to_end"]["s_per_batch"]
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dry_run": args.dry_run,
        "params_m": n_params / 1e6,
        "dtype": str(dtype).replace("torch.", ""),
        "batch": args.batch,
        "seconds": args.seconds,
        "iters": args.iters,
        "rows": rows,
        "end_to_end_over_forward_only": ratio,
        "target": 0.75,
    }
    print(
        f"w2v-BERT quality scorer, {result['params_m']:.2f}M params, {result['dtype']}, {args.batch} x {args.seconds:g} s, device {result['device']}"
    )
    print(f"{'mode':<14}{'s/batch':>10}{'audio-h per GPU-h':>20}{'peak GiB':>10}")
    for name, r in rows.items():
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        print(f"{name:<14}{r['s_per_batch']:>10.4f}{r['audio_hours_per_gpu_hour']:>20.0f}{mem:>10}")
    print(f"end_to_end / forward_only = {ratio:.2f} (target >= 0.75)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
