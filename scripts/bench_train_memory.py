"""`make bench-train-memory`: host memory of each rank of the sharded trainer, loading and checkpointing.

A mid-size S2-shaped Dual-AR (slow AR of about 0.5 B parameters: 36 layers, dim 1024, 16 x 64 heads, 8 KV heads,
FFN 3072; a 2-layer fast AR; 10 codebooks) with random weights is written once in the released format (bfloat16
safetensors). Then 2 ranks (gloo on CPU, launched as torchrun launches them) each run the trainer's own pieces:
training.trainer.prepare (meta build, FSDP2, each rank reading its own rows of the safetensors), a few full
fine-tuning steps of training.trainer.train_step on synthetic packed rows, and one training.checkpoint save (DCP,
every rank its shards). A thread samples the process's RSS every few milliseconds.

Per rank it reports
  load_growth_over_model: RSS after sharding - RSS before the model is built, over the full fp32 model's bytes
      (also the peak while loading);
  save_growth_over_model: peak RSS while saving - RSS of the training steady state just before the save (the
      steps' activations freed), over the same bytes (also over the training steps' peak, which is higher).
Targets (issue 20): load growth <= 0.6 on every rank (each holds half the fp32 weights), save growth <= 0.1.
Written to bench_out/train_memory.json with the machine's load average.

Usage: .venv/bin/python -m scripts.bench_train_memory [--layers 36] [--dim 1024] [--steps 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from models.dual_ar.config import DualARConfig, StackConfig

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2


class RssSampler:
    """The process's resident set size, sampled every `interval` seconds; `peak()` since the last `reset()`."""

    def __init__(self, interval: float = 0.002):
        self.process, self.interval = psutil.Process(), interval
        self._peak = self.rss()
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self.rss())

    def reset(self) -> None:
        self._peak = self.rss()

    def peak(self) -> int:
        return max(self._peak, self.rss())


def model_config(layers: int, dim: int, vocab: int, begin: int, codebook_size: int) -> DualARConfig:
    slow = StackConfig(
        n_layer=layers,
        dim=dim,
        n_head=dim // 64,
        n_local_heads=dim // 128,
        head_dim=64,
        intermediate_size=3 * dim,
        attention_qk_norm=True,
    )
    return DualARConfig(
        slow=slow,
        fast=dataclasses.replace(slow, n_layer=2, attention_qk_norm=False),
        vocab_size=vocab,
        codebook_size=codebook_size,
        num_codebooks=10,
        semantic_begin_id=begin,
        semantic_end_id=begin + codebook_size - 1,
        rope_base=1_000_000.0,
        norm_eps=1e-6,
        max_seq_len=4096,
        random_init=True,
    )


def write_checkpoint(folder: Path, layers: int, dim: int) -> int:
    """A random mid-size model in the released format; returns its parameter count."""
    from models.dual_ar.checkpoint import save_s2_checkpoint
    from models.dual_ar.model import DualARTransformer
    from models.dual_ar.tokens import TokenIds, byte_level_tokenizer, extend_tokenizer, padded_vocab_size

    codebook_size = 1024
    tokenizer = extend_tokenizer(byte_level_tokenizer(), codebook_size)
    ids = TokenIds.from_tokenizer(tokenizer, codebook_size)
    config = model_config(layers, dim, padded_vocab_size(len(tokenizer)), ids.semantic_begin, codebook_size)
    with torch.device("meta"):
        model = DualARTransformer(config)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, config.initializer_range) if p.ndim >= 2 else p.fill_(1.0)
    save_s2_checkpoint(model, tokenizer, folder)
    return sum(p.numel() for p in model.parameters())


def rank_worker(args) -> None:
    """One rank: load, train, save, with its RSS sampled; writes its figures to args.result."""
    from schemas.training import TrainConfig
    from scripts.gpu_bench_train import synthetic_batches
    from training import checkpoint
    from training.trainer import prepare, rng_state, setup_world, train_step, world_shape

    torch.set_num_threads(1)
    sampler = RssSampler()
    world = setup_world("cpu")
    config = TrainConfig.model_validate(
        {
            "data": {"shards": ["(synthetic rows)"], "seq_len": 128},
            "model": {"init": "s2", "path": args.folder},
            "runtime": {"dtype": "float32", "out": args.run_out, "fsdp": True},
        }
    )
    before = sampler.rss()
    sampler.reset()
    run, _ = prepare(config, world)
    load_peak, after = sampler.peak(), sampler.rss()

    batches = synthetic_batches(run.model.config, 128, 1, 0, 20)
    for g in run.optimizer.param_groups:
        g["lr"] = 1e-5
    train_step(run, batches, world, config)  # the optimizer's state appears at the first step
    sampler.reset()
    for _ in range(args.steps - 1):
        train_step(run, batches, world, config)
    steady_peak = sampler.peak()
    saver = checkpoint.Checkpointer(args.run_out, keep=1)
    steady = sampler.rss()
    sampler.reset()
    start = time.perf_counter()
    state = {"rng": world.gather(rng_state()), "world": world_shape(config, world.size)}
    saver.save(args.steps, run.tensors(), state)
    save_seconds = time.perf_counter() - start
    save_peak = sampler.peak()
    Path(args.result).write_text(
        json.dumps(
            {
                "rank": world.rank,
                "rss_before_load": before,
                "rss_after_load": after,
                "load_peak_growth": load_peak - before,
                "load_growth": after - before,
                "steady_rss": steady,
                "steady_peak": steady_peak,
                "save_peak_growth": save_peak - steady,
                "save_peak_over_training_peak": save_peak - steady_peak,
                "save_seconds": save_seconds,
            }
        )
    )


def launch(args, folder: Path, work: Path) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    procs = []
    for rank in range(RANKS):
        cmd = [sys.executable, "-m", "scripts.bench_train_memory", "--rank-worker", "--folder", str(folder)]
        cmd += ["--run-out", str(work / "run"), "--result", str(work / f"rank{rank}.json"), "--steps", str(args.steps)]
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
        )
    if any(p.wait() for p in procs):
        raise SystemExit(f"a rank failed: exit codes {[p.returncode for p in procs]}")
    return [json.loads((work / f"rank{rank}.json").read_text()) for rank in range(RANKS)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=36)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3, help="training steps before the save (at least 2)")
    p.add_argument("--out", default="bench_out/train_memory.json")
    p.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--run-out", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rank_worker:
        rank_worker(args)
        return 0

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = write_checkpoint(work / "model", args.layers, args.dim)
        model_bytes = 4 * params
        ranks = launch(args, work / "model", work)
    for r in ranks:
        r["load_growth_over_model"] = r["load_growth"] / model_bytes
        r["load_peak_growth_over_model"] = r["load_peak_growth"] / model_bytes
        r["save_growth_over_model"] = r["save_peak_growth"] / model_bytes
        r["save_peak_over_training_peak_over_model"] = r["save_peak_over_training_peak"] / model_bytes
    print(f"{params:,} parameters, full fp32 model {model_bytes / 2**30:.2f} GiB; {RANKS} gloo ranks on CPU")
    print(f"{'rank':>4} {'load growth':>12} {'load peak':>10} {'save growth':>12} {'save s':>7}")
    for r in ranks:
        print(
            f"{r['rank']:>4} {r['load_growth_over_model']:>11.2f}x {r['load_peak_growth_over_model']:>9.2f}x "
            f"{r['save_growth_over_model']:>11.3f}x {r['save_seconds']:>7.1f}"
        )
    result = {
        "model_parameters": params,
        "model_fp32_bytes": model_bytes,
        "ranks": ranks,
        "targets": {"load_growth_over_model": 0.6, "save_growth_over_model": 0.1},
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
