"""The GRPO loop of the Dual-AR model (the report, Section 4.3), to be read top to bottom.

    train_grpo(config, rewards)  ->  summary

1. The models: the codec (a checkpoint, or a tiny random one) and the policy (training.trainer.build_model) with
   rsLoRA adapters on its MLPs (training.lora.apply_lora). The reference policy is the same model with its adapters
   disabled (`adapters_disabled`): no second model in memory, and exactly the base model's outputs.
2. AdamW over the adapters (training.trainer's parameter groups: the slow AR's at optimizer.lr, the fast AR's at
   optimizer.lr_audio), a linear warmup, then a constant rate.
3. Resume: the newest checkpoint in runtime.out (training.checkpoint) restores the adapters, the optimizer, the step
   and the RNG; prompts and sampler seeds follow from the step (training.grpo.rollout), so the run goes on exactly.
4. A step. All of the step's P x G rollouts (this rank's prompt slots) drawn in one batched generation from the
   policy's sampler (adapters on), each group handed to the scorer (training.grpo.scoring), which decodes and
   scores it while the reference log-probs of every rollout are computed (adapters off, no gradient); the rewards;
   advantages over the scored rollouts (Eq. 5; a failed one is dropped, training.grpo.advantages), unless more than
   rewards.max_failed_fraction failed, which stops the run; the loss (Eq. 6-8, loss.length_norm) over micro-batches
   of rollouts with activation checkpointing (and bfloat16 autocast on a GPU), backward; gradients summed over
   ranks; clip; AdamW step.
5. A line per step in rewards.jsonl (below); a checkpoint every runtime.ckpt_every steps and at the end; the final
   policy, LoRA merged, in the released format under runtime.out/model.

rewards.jsonl, one line per step: step; total (mean R_i), group_std (mean over groups of the rewards' standard
deviation: zero means no learning signal), components (mean of every reward's score and components), all over the
rollouts that were scored; errors (rollouts with an error: unscoreable ones, at the worst reward, and unscored ones)
and error (the first reason); unscored (rollouts a failed reward service left without a reward); dropped (rollouts
that took no part in the loss: the unscored ones, and groups left with fewer than 2 scored); loss, loss_slow,
loss_fast (Eq. 8, 6, 7, means over rollouts), kl_slow, kl_fast (mean k3 per token); grad_norm, lr; frames (mean per rollout), ended (fraction that
ended with <|im_end|>); decoded and cache_hits (waveform cache); timeline: seconds since the run started at which
the batched generation, each group's scoring (rank 0's groups), the reference pass and the update began and ended.

Several ranks (torch.distributed set up by a launcher, e.g. pipelines/grpo.py under Ray Train): rank r takes the
step's prompt slots r, r + world, ...; every rollout's seed depends on its slot, not on the rank, and the loss is
normalised by the step's P x G rollouts, so the summed gradients are one process's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import storage
from models.dual_ar.model import DualARTransformer
from models.dual_ar.sampling import SamplingParams
from models.dual_ar.tokens import TokenIds
from models.rewards.base import Reward
from schemas.config import ModelSpec
from schemas.grpo import CodecSection, GRPOConfig
from schemas.training import ModelConfig
from schemas.training import OptimizerConfig as TrainOptimizerConfig
from training import checkpoint
from training.grpo.advantages import group_advantages, taking_part
from training.grpo.losses import grpo_loss, sampled_logprobs
from training.grpo.rollout import (
    RolloutGenerator,
    WaveformCache,
    load_prompts,
    pad_batch,
    rollout_seeds,
    step_prompts,
)
from training.grpo.scoring import Scorer
from training.lora import apply_lora
from training.trainer import (
    build_model,
    config_leaves,
    export,
    lr_factor,
    param_groups,
    progress_bar,
    rng_state,
    set_rng_state,
    setup_world,
)

REWARDS_LOG = "rewards.jsonl"
MODEL_DIR = "model"
# settings a resumed run may change: they decide neither which rollouts are drawn nor how they are scored and used
RESUMABLE_CHANGES = (
    "runtime.steps",
    "runtime.ckpt_every",
    "runtime.keep_checkpoints",
    "runtime.resume",
    "runtime.out",
    "runtime.device",
    "runtime.cpu_threads",
    "runtime.micro_batch",
    "codec.device",
    "codec.batch_size",
    "ray.",
    "rewards.url",
    "rewards.token_env",
    "rewards.timeout_s",
    "rewards.retries",
    "rewards.retry_backoff_s",
    "rewards.max_failed_fraction",
)


class GRPOError(RuntimeError):
    """A run that cannot start as configured; the message is one line naming the setting."""


# --- 1. the models --------------------------------------------------------------------------------------------


def build_codec(section: CodecSection):
    """The S2Codec wrapper of the config: its checkpoint, or a tiny random one written through the real save path."""
    from models.codec import S2Codec
    from models.codec.checkpoint import random_codec, save_codec
    from models.codec.config import CodecConfig

    def spec(checkpoint: str) -> ModelSpec:
        return ModelSpec(
            name="s2-codec",
            checkpoint=checkpoint,
            device=section.device,
            dtype=section.dtype,
            batch_size=section.batch_size,
        )

    if section.tiny is None:
        return S2Codec.from_spec(spec(section.checkpoint))
    t = section.tiny
    config = dataclasses.replace(
        CodecConfig.tiny(),
        semantic_codebook_size=t.semantic_codebook_size,
        codebook_size=t.codebook_size,
        residual_codebooks=t.residual_codebooks,
    )
    with tempfile.TemporaryDirectory() as folder:
        return S2Codec.from_spec(spec(str(save_codec(random_codec(config, seed=t.seed), folder))))


def build_policy(config: GRPOConfig, device: torch.device) -> tuple[DualARTransformer, object]:
    """(policy with rsLoRA adapters on `device`, tokenizer). On a GPU in bfloat16 the frozen base weights are cast
    to it (half the memory, nothing of them is trained); the adapters stay float32."""
    p = config.policy
    model, tokenizer = build_model(
        ModelConfig(init=p.init, path=p.path, seed=p.seed, tiny=p.tiny, attention=p.attention)
    )
    if config.runtime.dtype == "bfloat16" and device.type == "cuda":
        model = model.to(torch.bfloat16)
    torch.manual_seed(config.runtime.seed)  # the adapters' initial A: the same on every rank
    model = apply_lora(model, config.lora)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    model.activation_checkpointing = True  # the loss's backward recomputes each block: P x G rollouts fit
    return model.to(device).eval(), tokenizer


@contextmanager
def adapters_disabled(model):
    """The reference policy: every LoRA layer computes its base layer alone, bit for bit the model without adapters."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield model
    finally:
        for m in layers:
            m.enable_adapters(True)


# --- 2. the optimizer -----------------------------------------------------------------------------------------


def optimizer_config(config: GRPOConfig) -> TrainOptimizerConfig:
    """The trainer's optimizer settings that make its groups and warmup-stable schedule GRPO's: warmup, then flat."""
    o = config.optimizer
    return TrainOptimizerConfig(
        lr_text=o.lr,
        lr_audio=o.lr_audio or o.lr,
        betas=o.betas,
        eps=o.eps,
        weight_decay=o.weight_decay,
        warmup_steps=o.warmup_steps,
        stable_steps=config.runtime.steps,
        decay_steps=0,
        grad_clip=o.grad_clip,
    )


# --- 3. resume ------------------------------------------------------------------------------------------------


def check_resumable(saved: dict, config: GRPOConfig, uri: str) -> None:
    before, now = config_leaves(saved), config_leaves(config.model_dump(mode="json"))
    for path in sorted(before.keys() | now.keys()):
        if not path.startswith(RESUMABLE_CHANGES) and before.get(path) != now.get(path):
            raise GRPOError(
                f"checkpoint {uri} was written with {path}={json.dumps(before.get(path))}, this run has {path}={json.dumps(now.get(path))}: "
                "set it back, or start afresh in another runtime.out or with --set runtime.resume=false"
            )


# --- 5. the log -----------------------------------------------------------------------------------------------


class JsonlLog:
    """A JSONL file in runtime.out, written locally (or kept in a local file and uploaded at every checkpoint when
    runtime.out is on S3). A resumed run keeps the lines up to its checkpoint's step and drops a torn last line."""

    def __init__(self, out: str, name: str, resumed_step: int | None):
        self.uri = storage.join(out, name)
        self.remote = storage.is_s3(out)
        self.path = Path(tempfile.mkdtemp()) / name if self.remote else Path(self.uri)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resumed_step is not None and storage.exists(self.uri):
            for line in storage.read_bytes(self.uri).decode().splitlines():
                try:
                    if json.loads(line)["step"] <= resumed_step:
                        kept.append(line + "\n")
                except json.JSONDecodeError:
                    continue
        self.path.write_text("".join(kept))

    def write(self, line: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")

    def publish(self) -> None:
        if self.remote:
            storage.put_file(self.path, self.uri)


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def step_line(step: int, rollouts: list[dict], group_size: int) -> dict:
    """The rewards.jsonl fields that summarise a step's rollouts (each a dict of its numbers, in slot order): the
    rewards are those of the rollouts that were scored; the unscored ones are counted."""
    scored = [r for r in rollouts if not r["unscored"]]
    groups = [
        [r["score"] for r in rollouts[k : k + group_size] if not r["unscored"]]
        for k in range(0, len(rollouts), group_size)
    ]
    keys = sorted({k for r in scored for k in r["components"]})
    errors = [r["error"] for r in rollouts if r["error"] is not None]
    return {
        "step": step,
        "total": _mean([r["score"] for r in scored]),
        "group_std": _mean([np.std(g) for g in groups if len(g) >= 2]),
        "components": {k: _mean([r["components"][k] for r in scored if k in r["components"]]) for k in keys},
        "errors": len(errors),
        "error": errors[0] if errors else None,
        "unscored": sum(r["unscored"] for r in rollouts),
        "dropped": sum(not r["kept"] for r in rollouts),
        **{k: _mean([r[k] for r in rollouts]) for k in ("loss_slow", "loss_fast", "kl_slow", "kl_fast", "frames")},
        "ended": _mean([float(r["ended"]) for r in rollouts]),
    }


def check_failures(step: int, results: list, unscored: list[bool], world, max_fraction: float) -> None:
    """Stop the run, in one line, when a failed reward service left more than `max_fraction` of the step's rollouts
    (on every rank) without a reward."""
    errors = Counter(r.error for r, u in zip(results, unscored) if u)
    failed, total = world.sum([errors.total(), len(results)])
    if failed > max_fraction * total:
        reason = f"; most often: {errors.most_common(1)[0][0]}" if errors else ""
        raise GRPOError(
            f"step {step}: a reward service left {int(failed)} of {int(total)} rollouts without a reward, more "
            f"than rewards.max_failed_fraction {max_fraction:g}{reason}"
        )


# --- the run --------------------------------------------------------------------------------------------------


def train_grpo(
    config: GRPOConfig,
    rewards: Mapping[str, Reward],
    *,
    device: str | torch.device | None = None,
    report: Callable[[dict], None] | None = None,
) -> dict:
    """Run GRPO to runtime.steps with `rewards` (training.grpo.rewards.build_rewards: one per weighted reward);
    returns the last log line, the step it resumed from (0: a fresh start) and where things are. `device`
    overrides runtime.device (a launcher that assigned one); `report(line)` is called with every step's line on
    every rank (Ray Train's report)."""
    rt = config.runtime
    if rt.cpu_threads:
        torch.set_num_threads(rt.cpu_threads)
    world = setup_world(device or rt.device)
    G, P = rt.group_size, rt.prompts_per_step
    weights = config.rewards.active()
    if set(rewards) != set(weights):
        raise GRPOError(f"rewards {sorted(rewards)} given for the weighted rewards {sorted(weights)}")

    # 1. the models
    codec = build_codec(config.codec)
    model, tokenizer = build_policy(config, world.device)
    mc = model.config
    ids = TokenIds.from_tokenizer(tokenizer, mc.codebook_size)
    sizes = list(codec.codebook_sizes)
    if len(sizes) != mc.num_codebooks or max(sizes) > mc.codebook_size:
        raise GRPOError(
            f"the codec's codebooks {sizes} do not fit the policy's {mc.num_codebooks} codebooks of {mc.codebook_size} entries"
        )
    s = config.sampling
    generator = RolloutGenerator(
        model,
        tokenizer,
        ids,
        sizes,
        SamplingParams(s.temperature, s.top_p, s.top_k, s.ras_window, s.ras_temperature, s.ras_top_p),
        s.max_new_tokens,
    )
    prompts = load_prompts(config.prompts, codec, mc.num_codebooks, mc.codebook_size, rt.seed)
    if weights.get("similarity", 0) > 0:
        voiceless = [p.key for p in prompts if p.reference_codes is None]
        if voiceless:
            raise GRPOError(
                f"rewards.weights.similarity > 0 needs a reference voice in every prompt; {voiceless[0]} has none"
            )

    # 2. the optimizer
    opt = optimizer_config(config)
    groups = param_groups(model, opt)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=0.0, betas=opt.betas, eps=opt.eps, fused=True)

    # 3. resume
    step = resumed_from = 0
    saved = checkpoint.load_latest(rt.out) if rt.resume else None
    if saved is not None:
        uri, state = saved
        check_resumable(state["config"], config, uri)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if set(state["model"]) != trainable:
            raise GRPOError(f"checkpoint {uri} holds other adapters than this policy (lora or policy changed)")
        model.load_state_dict({k: v.clone() for k, v in state["model"].items()}, strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step = resumed_from = state["step"]
        set_rng_state(state["rng"][min(world.rank, len(state["rng"]) - 1)])
        del state

    # 4. the loop
    log = JsonlLog(rt.out, REWARDS_LOG, step if saved else None) if world.rank == 0 else None
    cache = WaveformCache(codec, capacity=4 * P * G)
    scorer = Scorer(rewards, weights, cache)
    start = time.perf_counter()

    def since(t: float) -> float:
        return round(t - start, 6)

    autocast = world.device.type == "cuda" and rt.dtype == "bfloat16"

    def logprobs(batch):
        inputs, labels = (t.to(world.device) for t in batch)
        with torch.autocast(world.device.type, dtype=torch.bfloat16, enabled=autocast):
            return sampled_logprobs(
                model, inputs, labels, codebook_sizes=sizes, im_end_id=ids.im_end, temperature=s.temperature
            )

    line: dict = {}
    progress = progress_bar(rt.steps, step, world.rank == 0, "grpo")
    try:
        while step < rt.steps:
            factor = lr_factor(step, opt)
            for g in optimizer.param_groups:
                g["lr"] = g["peak_lr"] * factor
            order = step_prompts(len(prompts), step, P, rt.seed)
            slots = list(range(world.rank, P, world.size))

            # rollouts: the step's P x G in one batch, then each group to the scorer
            t0 = time.perf_counter()
            drawn = [(prompts[order[slot]], seed) for slot in slots for seed in rollout_seeds(rt.seed, step, slot, G)]
            rollouts = generator.rollouts([p for p, _ in drawn], [seed for _, seed in drawn])
            generate_span = [since(t0), since(time.perf_counter())]
            hits_before = cache.hits
            futures = [scorer.submit(rollouts[k * G : (k + 1) * G]) for k in range(len(slots))]
            batches = [
                pad_batch([generator.training_pair(r) for r in rollouts[i : i + rt.micro_batch]])
                for i in range(0, len(rollouts), rt.micro_batch)
            ]

            # the reference policy's log-probs, while the groups are scored
            t0 = time.perf_counter()
            with torch.no_grad(), adapters_disabled(model):
                reference = [logprobs(b) for b in batches]
            reference_span = [since(t0), since(time.perf_counter())]
            scores = [f.result() for f in futures]
            groups = [
                {"slot": slot, "score": [since(sc.started), since(sc.finished)]} for slot, sc in zip(slots, scores)
            ]
            results = [r for sc in scores for r in sc.results]
            unscored = [u for sc in scores for u in sc.unscored]
            check_failures(step + 1, results, unscored, world, config.rewards.max_failed_fraction)

            # Eq. 5-8 and the update
            t0 = time.perf_counter()
            rewards_t = torch.tensor([r.score for r in results], dtype=torch.float64).view(-1, G)
            scored = ~torch.tensor(unscored).view(-1, G)
            advantages = group_advantages(rewards_t, scored).flatten().to(world.device)
            kept = taking_part(scored).flatten()
            model.train()
            parts = []
            for k, (batch, ref) in enumerate(zip(batches, reference)):
                part = grpo_loss(
                    logprobs(batch),
                    ref,
                    advantages[k * rt.micro_batch : (k + 1) * rt.micro_batch],
                    beta=config.loss.beta,
                    gamma=config.loss.gamma,
                    normaliser=P * G,
                    length_norm=config.loss.length_norm,
                    max_new_tokens=s.max_new_tokens,
                    kept=kept[k * rt.micro_batch : (k + 1) * rt.micro_batch],
                )
                part.loss.backward()
                parts.append(part)
            model.eval()
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                if world.size > 1:
                    dist.all_reduce(p.grad)
            clip = config.optimizer.grad_clip
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            update_span = [since(t0), since(time.perf_counter())]

            # 5. the log and the checkpoint
            per_loss = {
                name: torch.cat([getattr(p, name) for p in parts]).tolist()
                for name in ("slow", "fast", "kl_slow", "kl_fast")
            }
            mine = [
                {
                    "score": r.score,
                    "components": r.components,
                    "error": r.error,
                    "loss_slow": per_loss["slow"][i],
                    "loss_fast": per_loss["fast"][i],
                    "kl_slow": per_loss["kl_slow"][i],
                    "kl_fast": per_loss["kl_fast"][i],
                    "frames": rollout.frames,
                    "ended": rollout.ended,
                    "kept": bool(kept[i]),
                    "unscored": unscored[i],
                }
                for i, (r, rollout) in enumerate(zip(results, rollouts))
            ]
            everyone = [r for rank in world.gather(mine) for r in rank]
            decoded, hits = world.sum([sum(sc.decoded for sc in scores), cache.hits - hits_before])
            line = step_line(step, everyone, G)
            line |= {
                "loss": line["loss_slow"] + config.loss.gamma * line["loss_fast"],
                "grad_norm": grad_norm,
                "lr": config.optimizer.lr * factor,
                "decoded": int(decoded),
                "cache_hits": int(hits),
                "timeline": {
                    "generate": generate_span,
                    "groups": groups,
                    "reference": reference_span,
                    "update": update_span,
                },
            }
            if log is not None:
                log.write(line)
            if report is not None:
                report(line)
            progress.update(1)
            progress.set_postfix(reward=f"{line['total']:.3f}", kl=f"{line['kl_slow']:.4f}")

            if step % rt.ckpt_every == 0 or step == rt.steps:
                state = {
                    "step": step,
                    "model": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
                    "optimizer": optimizer.state_dict(),
                    "data": {"prompt_position": step * P},
                    "rng": world.gather(rng_state()),
                    "config": config.model_dump(mode="json"),
                    "world": world.size,
                }
                if world.rank == 0:
                    checkpoint.save(rt.out, step, state, rt.keep_checkpoints)
                    log.publish()
                del state
    finally:
        progress.close()
        scorer.close()

    model_uri = storage.join(rt.out, MODEL_DIR)
    if world.rank == 0:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        export(state, model.config, tokenizer, config.lora, model_uri)
    if world.size > 1:
        dist.barrier()
    last = {k: v for k, v in line.items() if k != "timeline"}
    return {
        "out": rt.out,
        "model": model_uri,
        "rewards": storage.join(rt.out, REWARDS_LOG),
        "resumed_from": resumed_from,
        "last": last,
    }
