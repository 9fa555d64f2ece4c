"""Training throughput of the S2-Pro Dual-AR shape on one GPU: tokens/s and MFU of the trainer's own step.

The model is S2-Pro's (36-layer slow AR, dim 2560, 32 x 128 heads, 8 KV heads, FFN 9728, vocabulary 155,776;
4-layer fast AR at the same width; 10 codebooks of 4,096: 4.56 B parameters) with random weights drawn on the GPU
(speed does not depend on them). Each variant builds it on the meta device, prepares it with
training.trainer.prepare (bf16, FSDP2 `fully_shard` over a process group of one rank, then materialised with random
rows drawn on the GPU; torch.compile per block, flex attention, optionally activation checkpointing; full fine-tune,
or LoRA adapters on the MLPs) and times training.trainer.train_step: forward and backward of both ARs over
`--accumulation` packed rows of `--seq-len` tokens, gradient clipping and the fused AdamW step.

The rows are packed by training.data.pack_rows from synthetic samples laid out as the data path lays out a
curated utterance with its reference: ~100 text tokens (system prompt, reference transcript, user turn), a
reference of --ref-frames frames (masked) and a target of --frames frames (learned, through the fast AR).
MFU = the model FLOPs of both ARs (training.flops) / time / the GPU's bf16 dense peak.
It also prints how many samples per second one GPU consumes at that rate: what `make bench-train`'s loader must
feed ten times over.

Usage:
  .venv/bin/python -m scripts.gpu_bench_train --out bench_out/train_gpu.json    # on a GPU machine (H200: ~140 GB)
  .venv/bin/python -m scripts.gpu_bench_train --dry-run                         # tiny model on CPU, seconds
Options: --variants 8192:ac,4096,4096:lora (seq_len[:ac][:lora], comma-separated) --accumulation 2 --steps 4 --warmup 2
         --frames 215 --ref-frames 215 --no-compile --attention flex|sdpa
A variant that does not fit in GPU memory is reported as 'OOM' and the run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path

import torch

from models.dual_ar.config import DualARConfig, StackConfig
from models.dual_ar.model import DualARTransformer
from schemas.training import TrainConfig
from training import flops
from training.data import IGNORE, Example, pack_rows
from training.trainer import prepare, setup_world, train_step

S2_PRO_SLOW = StackConfig(
    n_layer=36, dim=2560, n_head=32, n_local_heads=8, head_dim=128, intermediate_size=9728, attention_qk_norm=True
)
S2_PRO = DualARConfig(
    slow=S2_PRO_SLOW,
    fast=dataclasses.replace(S2_PRO_SLOW, n_layer=4, attention_qk_norm=False),
    vocab_size=155_776,
    codebook_size=4096,
    num_codebooks=10,
    semantic_begin_id=151_678,
    semantic_end_id=155_773,
    rope_base=1_000_000.0,
    norm_eps=1e-6,
    max_seq_len=32768,
)
TINY_SLOW = StackConfig(n_layer=2, dim=64, n_head=4, n_local_heads=2, head_dim=16, intermediate_size=128)
TINY = DualARConfig(
    slow=TINY_SLOW,
    fast=dataclasses.replace(TINY_SLOW, n_layer=1),
    vocab_size=640,
    codebook_size=64,
    num_codebooks=10,
    semantic_begin_id=512,
    semantic_end_id=575,
    max_seq_len=4096,
)
TEXT_TOKENS = (60, 40)  # system prompt with the reference transcript; user turn and assistant header


def synthetic_example(config: DualARConfig, ref_frames: int, frames: int, generator: torch.Generator) -> Example:
    """One sample in the data path's layout: text, reference audio (masked), text, target audio and <|im_end|>
    (learned)."""
    N, begin = config.num_codebooks, config.semantic_begin_id
    parts, learned, audio = [], [], []

    def text(n: int, learn: bool = False) -> None:
        row = torch.zeros(N + 1, n, dtype=torch.long)
        row[0] = torch.randint(0, begin - 16, (n,), generator=generator)
        parts.append(row)
        learned.append(torch.full((n,), learn))
        audio.append(torch.zeros(n, dtype=torch.bool))

    def codes(n: int, learn: bool) -> None:
        c = torch.randint(0, config.codebook_size, (N, n), generator=generator)
        parts.append(torch.cat([c[:1] + begin, c]))
        learned.append(torch.full((n,), learn))
        audio.append(torch.ones(n, dtype=torch.bool))

    text(TEXT_TOKENS[0])
    codes(ref_frames, False)
    text(TEXT_TOKENS[1])
    codes(frames, True)
    text(1, True)  # <|im_end|>
    tokens, mask, is_audio = torch.cat(parts, dim=1), torch.cat(learned), torch.cat(audio)
    labels = tokens[:, 1:].clone()
    labels[1:, ~is_audio[1:]] = IGNORE
    return Example(tokens[:, :-1], labels, mask[1:])


def synthetic_batches(config: DualARConfig, seq_len: int, count: int, ref_frames: int, frames: int) -> list:
    """`count` micro-batches of one packed row each, greedily filled as the loader fills them."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        row, used = [], 0
        while True:
            ex = synthetic_example(config, ref_frames, frames, generator)
            if used + ex.length > seq_len:
                break
            row.append(ex)
            used += ex.length
        batches.append(pack_rows([row], seq_len, config.num_codebooks, pad_id=0))
    return batches


def random_source(config: DualARConfig, device: torch.device) -> tuple:
    """(model on the meta device, no tokenizer, random rows drawn on `device`) for training.trainer.prepare: a
    CPU generator would take minutes for 4.5 B; speed does not depend on the values."""
    with torch.device("meta"):
        model = DualARTransformer(config)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}

    def rows(name: str, start: int, stop: int) -> torch.Tensor:
        shape = (stop - start, *shapes[name][1:])
        if len(shapes[name]) < 2:
            return torch.ones(shape, device=device)
        return torch.empty(shape, device=device).normal_(0.0, config.initializer_range)

    return model, None, rows


def bench_variant(args, model_config: DualARConfig, seq_len: int, ac: bool, lora: bool, world) -> dict:
    config = TrainConfig.model_validate(
        {
            "data": {"shards": ["(synthetic rows)"], "seq_len": seq_len},
            "model": {"attention": args.attention},
            "runtime": {"dtype": args.dtype, "compile": args.compile, "activation_checkpointing": ac, "fsdp": True},
            "optimizer": {"accumulation": args.accumulation},
            "lora": {"enabled": lora},
        }
    )
    row = {"seq_len": seq_len, "activation_checkpointing": ac, "lora": lora, "accumulation": args.accumulation}
    run = None
    try:
        run, _ = prepare(config, world, random_source(model_config, world.device))
        batches = synthetic_batches(model_config, seq_len, args.accumulation, args.ref_frames, args.frames)
        for g in run.optimizer.param_groups:
            g["lr"] = 1e-5
        for _ in range(args.warmup):
            train_step(run, batches, world, config)
        _sync(world.device)
        start = time.perf_counter()
        done = [train_step(run, batches, world, config) for _ in range(args.steps)]
        _sync(world.device)
        seconds = (time.perf_counter() - start) / args.steps
    except torch.OutOfMemoryError:
        return {**row, "result": "OOM"}
    finally:
        run = None
        gc.collect()
        if world.device.type == "cuda":
            torch.cuda.empty_cache()
    stats = done[-1]
    peak, source = flops.peak_flops(world.device, torch.bfloat16 if args.dtype == "bfloat16" else torch.float32)
    sample_tokens = sum(TEXT_TOKENS) + args.ref_frames + args.frames + 1
    tokens_per_s = stats.real_tokens / seconds
    return {
        **row,
        "result": "ok",
        "seconds_per_step": seconds,
        "tokens_per_step": stats.real_tokens,
        "tokens_per_s": tokens_per_s,
        "mfu": stats.flops / seconds / peak,
        "peak_flops": peak,
        "peak_source": source,
        "samples_per_s": tokens_per_s / sample_tokens,
        "sample_tokens": sample_tokens,
        "peak_memory_gib": torch.cuda.max_memory_allocated(world.device) / 2**30
        if world.device.type == "cuda"
        else None,
        "loss": stats.sums[0].item() / max(stats.tokens, 1) + stats.sums[1].item() / max(stats.frames, 1),
    }


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="a tiny model on CPU: checks the script in seconds")
    p.add_argument(
        "--variants", default="8192:ac,4096,4096:lora", help="seq_len[:ac][:lora] per variant, comma-separated"
    )
    p.add_argument("--accumulation", type=int, default=2, help="packed rows per optimizer step")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens there)")
    p.add_argument("--frames", type=int, default=215, help="learned frames per sample (10 s at 21.5 Hz)")
    p.add_argument("--ref-frames", type=int, default=215, help="reference frames per sample")
    p.add_argument("--attention", default="flex", choices=["flex", "sdpa"])
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    model_config = S2_PRO
    if args.dry_run:
        model_config = TINY
        args.device, args.variants, args.steps, args.warmup = "cpu", "256:ac,128,128:lora", 2, 1
        args.attention, args.compile, args.frames, args.ref_frames = "sdpa", False, 12, 8
        torch.set_num_threads(1)
    world = setup_world(args.device, fsdp=True)
    variants = [v.split(":") for v in args.variants.split(",")]
    rows = [bench_variant(args, model_config, int(v[0]), "ac" in v, "lora" in v, world) for v in variants]

    name = torch.cuda.get_device_name(world.device) if world.device.type == "cuda" else "cpu"
    params = sum(p.numel() for p in DualARTransformer(model_config).parameters()) if args.dry_run else 4_561_852_416
    print(f"Dual-AR training step on {name}: {params:,} parameters, {args.dtype}, FSDP2 on one rank")
    print(
        f"{'seq_len':>8} {'AC':>4} {'LoRA':>5} {'tokens/s':>10} {'MFU':>7} {'samples/s':>10} {'s/step':>8} {'peak GiB':>9}"
    )
    for r in rows:
        if r["result"] != "ok":
            print(f"{r['seq_len']:>8} {_on(r['activation_checkpointing']):>4} {_on(r['lora']):>5} {r['result']:>10}")
            continue
        memory = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "-"
        print(
            f"{r['seq_len']:>8} {_on(r['activation_checkpointing']):>4} {_on(r['lora']):>5} {r['tokens_per_s']:>10.0f} "
            f"{r['mfu']:>7.1%} {r['samples_per_s']:>10.2f} {r['seconds_per_step']:>8.3f} {memory:>9}"
        )
    best = max((r for r in rows if r["result"] == "ok"), key=lambda r: r["tokens_per_s"], default=None)
    if best is not None:
        print(
            f"one device consumes {best['samples_per_s']:.2f} samples/s ({best['sample_tokens']} tokens each): "
            f"the loader must feed {10 * best['samples_per_s']:.1f} samples/s per device (make bench-train)"
        )
    result = {"device": name, "dry_run": args.dry_run, "parameters": params, "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0 if best is not None else 1


if __name__ == "__main__":
    sys.exit(main())
