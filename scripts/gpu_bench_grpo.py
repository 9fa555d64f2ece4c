"""A GRPO step at the S2-Pro shape on one GPU: rollouts batched against sequential, the policy loss, and the s2 rewards.

The policy is S2-Pro's Dual-AR shape (scripts/gpu_bench_train.py S2_PRO: 4.56 B parameters) with random weights
drawn on the GPU, in bfloat16, with the report's rsLoRA adapters (training.lora); the sampler is the loop's
(models.dual_ar.generate with the counter-based stream, the reference API's settings, restricted to the S2 codec's
4,096 semantic and 1,024 acoustic codes). Prompts are synthetic in the data path's layout: --text-tokens of text and
a reference of --ref-frames frames. Random weights rarely draw <|im_end|>, so rollouts run to --max-new-tokens.

1. Rollouts: step 0's P x G generated in one batch (what the loop runs), per prompt's group (what it ran before) and
   one at a time (the first --sequential rollouts: a rate), each with the same seeds; the codes must agree.
2. The policy loss: the reference pass (adapters disabled, no gradient) and the policy's forward and backward of
   Eq. 6-8 (training.grpo.losses, constant length normalisation) over micro-batches of the P x G rollouts, with
   activation checkpointing and bfloat16 autocast, as training.grpo.loop runs them.
3. Scoring: scripts.gpu_bench_rewards.measure (R_STT on the Qwen3-Omni thinker, R_Pref on w2v-BERT 2.0 + head,
   R_SIM on WavLM, random weights at full size) on clips as long as the rollouts' audio, in batches of G; a step's
   scoring is P batches of each.

Usage:
  .venv/bin/python -m scripts.gpu_bench_grpo --out bench_out/grpo_gpu.json     # on a GPU machine (H100 80 GB)
  .venv/bin/python -m scripts.gpu_bench_grpo --dry-run                         # tiny models on CPU, a minute
Options: --prompts-per-step 4 --group-size 8 --max-new-tokens 64 --micro-batch 8 --sequential 4 --no-rewards
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.dual_ar.generate import generate
from models.dual_ar.model import DualARTransformer
from models.dual_ar.prompt import EncodedPrompt
from models.dual_ar.sampling import SamplingParams
from schemas.training import LoraConfig
from scripts import gpu_bench_rewards
from scripts.gpu_bench_train import S2_PRO, TINY, _sync
from training.grpo.advantages import group_advantages
from training.grpo.loop import adapters_disabled
from training.grpo.losses import grpo_loss, sampled_logprobs
from training.grpo.rollout import pad_batch, rollout_seeds
from training.lora import apply_lora

S2_IM_END = 151_645  # Qwen's <|im_end|>, the released tokenizer's
FRAME_S = 2048 / 44100  # one codec frame of audio


def random_model(config, device: torch.device) -> DualARTransformer:
    """Random weights drawn where the model lives (a CPU generator would take minutes for 4.5 B): speed does not
    depend on them."""
    with torch.device("meta"):
        model = DualARTransformer(config)
    model.to_empty(device=device)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, config.initializer_range)
            else:
                p.fill_(1.0)
    return model


def synthetic_prompts(config, count: int, text_tokens: int, ref_frames: int) -> list[torch.Tensor]:
    """Prompt rows [N+1, T]: text tokens below the semantic range, then a reference of ref_frames frames."""
    g = torch.Generator().manual_seed(0)
    N, begin = config.num_codebooks, config.semantic_begin_id
    out = []
    for i in range(count):
        text = torch.zeros(N + 1, text_tokens + i, dtype=torch.long)  # prompts of different lengths: left padding
        text[0] = torch.randint(0, begin, (text_tokens + i,), generator=g)
        codes = torch.randint(0, min(1024, config.codebook_size), (N, ref_frames), generator=g)
        out.append(torch.cat([text, torch.cat([codes[:1] + begin, codes])], dim=1))
    return out


def training_pair(prompt: torch.Tensor, codes: torch.Tensor, begin: int, im_end: int, steps: int):
    """(inputs, labels) of a prompt followed by its rollout, as RolloutGenerator.training_pair lays them out."""
    ended = codes.shape[1] < steps
    frames = torch.cat([codes[:1] + begin, codes])
    end = torch.zeros(prompt.shape[0], int(ended), dtype=torch.long)
    end[0] = im_end
    tokens = torch.cat([prompt, frames, end], dim=1)
    learned = torch.arange(tokens.shape[1]) >= prompt.shape[1]
    audio = learned & (torch.arange(tokens.shape[1]) < prompt.shape[1] + codes.shape[1])
    return EncodedPrompt(tokens, learned, audio).training_pair()


def bench_rollouts(args, model, prompts, sizes, im_end, device) -> tuple[list[dict], list]:
    P, G = args.prompts_per_step, args.group_size
    drawn = [(prompts[slot], seed) for slot in range(P) for seed in rollout_seeds(0, 0, slot, G)]
    ways = {
        "batched": [drawn],
        "per_group": [drawn[k : k + G] for k in range(0, len(drawn), G)],
        "sequential": [[d] for d in drawn[: args.sequential]],
    }
    kwargs = dict(im_end_id=im_end, max_new_tokens=args.max_new_tokens, sampling=SamplingParams(), noise="counter")
    kwargs |= dict(codebook_sizes=sizes)
    generate(model, [drawn[0][0]], seed=0, **kwargs | {"max_new_tokens": 2})  # warm-up
    rows, outputs = [], {}
    for way, batches in ways.items():
        _sync(device)
        started = time.perf_counter()
        outputs[way] = [
            c for b in batches for c in generate(model, [p for p, _ in b], seed=[s for _, s in b], **kwargs)
        ]
        _sync(device)
        seconds = time.perf_counter() - started
        tokens = sum(c.shape[1] + int(c.shape[1] < args.max_new_tokens) for c in outputs[way])
        rows.append({"way": way, "rollouts": len(outputs[way]), "seconds": seconds, "tokens_per_s": tokens / seconds})
    for way, codes in outputs.items():
        if not all(torch.equal(a, b) for a, b in zip(codes, outputs["batched"])):
            raise SystemExit(f"gpu_bench_grpo: the {way} rollouts differ from the batched ones")
    return rows, [(p, c) for (p, _), c in zip(drawn, outputs["batched"])]


def bench_loss(args, model, rollouts, sizes, im_end, device) -> dict:
    c = model.config
    pairs = [training_pair(p, codes, c.semantic_begin_id, im_end, args.max_new_tokens) for p, codes in rollouts]
    mb = args.micro_batch
    batches = [pad_batch(pairs[i : i + mb]) for i in range(0, len(pairs), mb)]
    rewards = torch.rand(args.prompts_per_step, args.group_size, dtype=torch.float64)
    advantages = group_advantages(rewards).flatten().to(device)
    autocast = device.type == "cuda"

    def logprobs(batch):
        inputs, labels = (t.to(device) for t in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            return sampled_logprobs(model, inputs, labels, codebook_sizes=sizes, im_end_id=im_end, temperature=0.8)

    _sync(device)
    started = time.perf_counter()
    with torch.no_grad(), adapters_disabled(model):
        reference = [logprobs(b) for b in batches]
    _sync(device)
    reference_s = time.perf_counter() - started
    model.train()
    started = time.perf_counter()
    for k, (batch, ref) in enumerate(zip(batches, reference)):
        part = grpo_loss(
            logprobs(batch),
            ref,
            advantages[k * mb : (k + 1) * mb],
            beta=0.04,
            gamma=1.0,
            normaliser=len(pairs),
            length_norm="constant",
            max_new_tokens=args.max_new_tokens,
        )
        part.loss.backward()
    _sync(device)
    model.eval()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "reference_s": reference_s,
        "policy_forward_backward_s": time.perf_counter() - started,
        "micro_batches": len(batches),
        "tokens": sum(int(x.shape[1]) for x, _ in pairs),
        "peak_mem_gib": peak,
    }


def bench_scoring(args, rollouts) -> dict | None:
    if args.no_rewards:
        return None
    seconds = float(np.mean([codes.shape[1] for _, codes in rollouts])) * FRAME_S
    reward_args = argparse.Namespace(
        device=args.device,
        seconds=seconds,
        batches=[args.group_size],
        target_tokens=48,
        iters=1 if args.dry_run else 3,
        warmup=1,
        rewards="stt,quality,similarity",
        dry_run=args.dry_run,
    )
    rows = gpu_bench_rewards.measure(reward_args)
    ok = [r for r in rows if "error" not in r]
    return {
        "rows": rows,
        "step_s_all_rewards_in_turn": args.prompts_per_step * sum(r["s_per_batch"] for r in ok),
        "clip_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny models on CPU: checks the script")
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--sequential", type=int, default=4, help="rollouts timed one at a time (a rate)")
    p.add_argument("--text-tokens", type=int, default=100)
    p.add_argument("--ref-frames", type=int, default=215)
    p.add_argument("--device", default="cuda")
    p.add_argument("--no-rewards", action="store_true", help="skip the s2 rewards")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    config, im_end = S2_PRO, S2_IM_END
    if args.dry_run:
        config, im_end = TINY, TINY.semantic_begin_id - 1
        args.device, args.max_new_tokens, args.text_tokens, args.ref_frames = "cpu", 6, 12, 4
        args.prompts_per_step, args.group_size, args.micro_batch, args.sequential = 2, 2, 2, 2
        torch.set_num_threads(1)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    sizes = [config.codebook_size] + [min(1024, config.codebook_size)] * (config.num_codebooks - 1)
    t0 = time.time()
    torch.manual_seed(0)
    model = random_model(config, device).eval()
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    model = apply_lora(model, LoraConfig(enabled=True))
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    model.activation_checkpointing = True
    prompts = [
        x.to(device) for x in synthetic_prompts(config, args.prompts_per_step, args.text_tokens, args.ref_frames)
    ]
    rows, rollouts = bench_rollouts(args, model, prompts, sizes, im_end, device)
    loss = bench_loss(args, model, [(p.cpu(), c) for p, c in rollouts], sizes, im_end, device)
    del model
    scoring = bench_scoring(args, rollouts)
    rate = {r["way"]: r["tokens_per_s"] for r in rows}
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dry_run": args.dry_run,
        "shape": "tiny" if args.dry_run else "S2-Pro (4.56 B), bfloat16, rsLoRA r 16",
        "prompts_per_step": args.prompts_per_step,
        "group_size": args.group_size,
        "max_new_tokens": args.max_new_tokens,
        "rows": rows,
        "rollout_tokens_per_s_batched_over_sequential": rate["batched"] / rate["sequential"],
        "rollout_tokens_per_s_batched_over_per_group": rate["batched"] / rate["per_group"],
        "loss": loss,
        "scoring": scoring,
        "wall_s": time.time() - t0,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(f"GRPO step on {result['device']}: {result['shape']}, {args.prompts_per_step} x {args.group_size} rollouts")
    for r in rows:
        print(
            f"  rollouts {r['way']:>10}: {r['rollouts']:>3} in {r['seconds']:.2f} s, {r['tokens_per_s']:.1f} tokens/s"
        )
    print(
        f"  batched / sequential {result['rollout_tokens_per_s_batched_over_sequential']:.2f}x, batched / per group "
        f"{result['rollout_tokens_per_s_batched_over_per_group']:.2f}x"
    )
    print(
        f"  loss: reference {loss['reference_s']:.2f} s, policy forward+backward {loss['policy_forward_backward_s']:.2f} s"
    )
    if scoring:
        print(
            f"  scoring (3 rewards in turn, {args.prompts_per_step} batches of {args.group_size}): {scoring['step_s_all_rewards_in_turn']:.2f} s"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
