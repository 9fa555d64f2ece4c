"""`make bench-grpo`: a GRPO step on CPU, its rollouts drawn in one batch against one rollout (or one prompt's group)
at a time, as a ratio measured in one run.

The policy is a tiny random-init Dual-AR model with the S2 codec's codebooks (10 of 4,096 entries; the tiny
random codec's 4,096 semantic and 9 x 1,024 acoustic codes), the sampler at the reference API's settings (top-p 0.8,
top-k 30, RAS); the prompts are the demo's (jobs/configs/grpo_demo_prompts.jsonl, their reference voices encoded by
the codec). The same P x G rollouts of step 0 are generated three ways, and must come out identical:

    batched     one generation of all P x G rollouts (what the loop runs)
    per_group   one generation per prompt's G rollouts (what the loop ran before)
    sequential  one generation per rollout

Rollout tokens/s counts the slow AR's sampled tokens (frames, and <|im_end|> where a rollout ended); each brings
N - 1 fast-AR draws. Then one whole step of training.grpo.loop.train_grpo: its timeline gives the generation,
scoring, reference-pass and update times. The reward is `duration` unless --reward names a curation model's.

  .venv/bin/python -m scripts.bench_grpo [--prompts-per-step 4] [--group-size 8] [--max-new-tokens 32]
      [--reward duration|quality] [--out bench_out/grpo.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 3.0


def config_for(args: argparse.Namespace, out: str):
    from schemas.config import layered
    from schemas.grpo import GRPOConfig

    return layered(
        GRPOConfig,
        {
            "policy": {
                "init": "tiny",
                "tiny": {"dim": args.dim, "n_layer": args.layers, "num_codebooks": 10, "codebook_size": 4096},
            },
            "codec": {"tiny": {}, "device": "cpu"},
            "prompts": {"jsonl": args.prompts},
            "sampling": {"max_new_tokens": args.max_new_tokens},
            "rewards": {"weights": {args.reward: 1.0}, "profile": "local"},
            "runtime": {
                "steps": 1,
                "group_size": args.group_size,
                "prompts_per_step": args.prompts_per_step,
                "micro_batch": args.group_size,
                "dtype": "float32",
                "device": "cpu",
                "cpu_threads": args.threads,
                "out": out,
                "resume": False,
            },
        },
    )


def rollout_rates(config) -> tuple[list[dict], int]:
    """The three ways of generating step 0's rollouts: a row per way, and the slow tokens drawn."""
    import torch

    from models.dual_ar.sampling import SamplingParams
    from models.dual_ar.tokens import TokenIds
    from training.grpo.loop import build_codec, build_policy
    from training.grpo.rollout import RolloutGenerator, load_prompts, rollout_seeds, step_prompts

    rt, s = config.runtime, config.sampling
    torch.set_num_threads(rt.cpu_threads)
    codec = build_codec(config.codec)
    model, tokenizer = build_policy(config, torch.device("cpu"))
    ids = TokenIds.from_tokenizer(tokenizer, model.config.codebook_size)
    sampling = SamplingParams(s.temperature, s.top_p, s.top_k, s.ras_window, s.ras_temperature, s.ras_top_p)
    generator = RolloutGenerator(model, tokenizer, ids, codec.codebook_sizes, sampling, s.max_new_tokens)
    prompts = load_prompts(config.prompts, codec, model.config.num_codebooks, model.config.codebook_size, rt.seed)
    order = step_prompts(len(prompts), 0, rt.prompts_per_step, rt.seed)
    G = rt.group_size
    drawn = [
        (prompts[order[slot]], seed)
        for slot in range(rt.prompts_per_step)
        for seed in rollout_seeds(rt.seed, 0, slot, G)
    ]
    calls = {
        "batched": [drawn],
        "per_group": [drawn[k : k + G] for k in range(0, len(drawn), G)],
        "sequential": [[d] for d in drawn],
    }
    generator.rollouts([drawn[0][0]], [drawn[0][1]])  # warm-up: first-call allocations out of the timings
    rows, outputs = [], {}
    for way, batches in calls.items():
        started = time.perf_counter()
        outputs[way] = [r for b in batches for r in generator.rollouts([p for p, _ in b], [seed for _, seed in b])]
        seconds = time.perf_counter() - started
        rows.append({"way": way, "generate_calls": len(batches), "seconds": seconds})
    for way, rollouts in outputs.items():  # the same rollouts whichever way they were drawn
        if not all(np.array_equal(a.codes, b.codes) for a, b in zip(rollouts, outputs["batched"])):
            raise SystemExit(f"bench-grpo: the {way} rollouts differ from the batched ones")
    tokens = sum(r.frames + r.ended for r in outputs["batched"])
    for row in rows:
        row["tokens_per_s"] = tokens / row["seconds"]
    return rows, tokens


def step_times(config) -> dict:
    """One step of the loop, from its own timeline: seconds of each phase."""
    from jobs.grpo import resolved_rewards
    from training.grpo.loop import REWARDS_LOG, train_grpo
    from training.grpo.rewards import build_rewards

    started = time.perf_counter()
    train_grpo(config, build_rewards(config.rewards, resolved_rewards(config)))
    wall = time.perf_counter() - started
    line = json.loads((Path(config.runtime.out) / REWARDS_LOG).read_text().splitlines()[-1])
    t = line["timeline"]
    scoring = [min(g["score"][0] for g in t["groups"]), max(g["score"][1] for g in t["groups"])]
    return {
        "generate_s": t["generate"][1] - t["generate"][0],
        "scoring_s": scoring[1] - scoring[0],
        "reference_s": t["reference"][1] - t["reference"][0],
        "update_s": t["update"][1] - t["update"][0],
        "step_s": t["update"][1] - t["generate"][0],
        "run_s_with_model_building": wall,
        "frames_per_rollout": line["frames"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", default="jobs/configs/grpo_demo_prompts.jsonl")
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--dim", type=int, default=128, help="width of the tiny policy (default 128)")
    p.add_argument("--layers", type=int, default=2, help="layers of each AR of the tiny policy (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a loaded, shared machine)")
    p.add_argument("--reward", choices=["duration", "quality"], default="duration")
    p.add_argument("--out", default="bench_out/grpo.json")
    args = p.parse_args(argv)
    from scripts.bench_curation import machine

    info = machine()
    with tempfile.TemporaryDirectory() as folder:
        config = config_for(args, folder)
        rows, tokens = rollout_rates(config)
        step = step_times(config)
    rate = {r["way"]: r["tokens_per_s"] for r in rows}
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": info | {"load_average_at_end": list(os.getloadavg())},
        "gpu": "none lent: CPU only",
        "shape": {
            "prompts_per_step": args.prompts_per_step,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "policy": f"tiny random-init Dual-AR, dim {args.dim}, {args.layers} layers, 10 codebooks of 4096",
            "threads": args.threads,
            "reward": args.reward,
        },
        "rollout_tokens": tokens,
        "rows": rows,
        "rollout_tokens_per_s_batched_over_sequential": rate["batched"] / rate["sequential"],
        "rollout_tokens_per_s_batched_over_per_group": rate["batched"] / rate["per_group"],
        "step": step,
    }
    print(
        f"{args.prompts_per_step} prompts x {args.group_size} rollouts, {tokens} rollout tokens, {args.threads} thread(s)"
    )
    print(f"{'way':>11} {'calls':>6} {'seconds':>8} {'tokens/s':>9}")
    for r in rows:
        print(f"{r['way']:>11} {r['generate_calls']:>6} {r['seconds']:>8.2f} {r['tokens_per_s']:>9.1f}")
    ratio = result["rollout_tokens_per_s_batched_over_sequential"]
    print(
        f"batched / sequential {ratio:.2f}x (target >= {TARGET:g}x), batched / per group "
        f"{result['rollout_tokens_per_s_batched_over_per_group']:.2f}x; one step: "
        + ", ".join(f"{k} {v:.2f}" for k, v in step.items())
    )
    print(f"load average {info['load_average_at_start'][0]:.1f} at start on {info['nproc']} cores: a shared machine")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
