"""The Dual-AR trainer: one loop for one process or many (torch.distributed), to be read top to bottom.

    train(config)  ->  summary

1. The world: rank and size from torch.distributed (a launcher such as Ray Train or torchrun sets it up; with
   WORLD_SIZE > 1 in the environment and no process group yet, one is started: NCCL on GPUs, gloo on CPUs).
2. The model: a released-format checkpoint, a Qwen3 checkpoint extended with the S2 vocabulary, or a tiny random
   one; LoRA adapters when asked; activation checkpointing; torch.compile per block; FSDP2 `fully_shard` per block
   and around model + loss when the world has more than one rank (or runtime.fsdp says so).
3. AdamW over four parameter groups: text foundation (slow AR, token embeddings) at lr_text, audio modules
   (codebook embeddings, fast AR) at lr_audio, each with and without weight decay; warmup-stable-decay.
4. The data: training.data.Loader, this rank's streams of packed rows.
5. Resume: the newest checkpoint in runtime.out restores weights, optimizer, step, data positions and RNG.
6. The loop: for every step, `accumulation` micro-batches; the loss (training.losses) is normalised by the
   learned tokens and frames of the whole global batch, so that any split of that batch over micro-batches and
   ranks gives the same gradient; clip, step, log (JSONL + a progress bar on a terminal), checkpoint.
7. The end: the final weights in the released format (LoRA merged) under runtime.out/model.

Metrics (metrics.jsonl, one line every runtime.log_every steps, global over ranks). Of the step logged: loss,
loss_slow, loss_fast (Eq. 4, 2, 3), fast_ce (per codebook, unweighted), grad_norm (before clipping), lr_text,
lr_audio. Over the steps since the previous line: tokens (real tokens per step), padding (fraction of the rows),
tokens_per_s, mfu (training.flops: model FLOPs of both ARs / time / peak of all devices), samples; skipped
(samples skipped by reason, since this process started).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import storage
from models.dual_ar.model import DualARTransformer
from models.dual_ar.tokens import TokenIds
from schemas.training import LoraConfig, ModelConfig, OptimizerConfig, TrainConfig
from training import checkpoint, flops
from training.data import IGNORE, PAD_SEGMENT, Batch, Loader
from training.evaluation import SampleWriter, eval_loss, held_out_batches
from training.lora import apply_lora, base_name, initial_adapter, is_adapter, merged_state_dict
from training.losses import DualARLoss, codebook_weights, combine
from training.sharding import materialize, materialize_from_rank0

METRICS = "metrics.jsonl"
MODEL_DIR = "model"
# a resumed run must read the same batches: the settings that decide them (besides the world's shape, see
# world_shape: loader workers and accumulation may change with the number of ranks)
SAME_BATCHES = ("data.", "runtime.micro_batch")
RESHAPEABLE = ("data.num_workers",)
STATE_KEYS = ("step", "data", "rng", "config", "world", "trainable")


class TrainError(RuntimeError):
    """A run that cannot start as configured; the message is one line naming the setting."""


# --- 1. the world -------------------------------------------------------------------------------------------


@dataclass
class World:
    rank: int
    size: int
    device: torch.device

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64 on this rank's device)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.size > 1:
            dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj) -> list:
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


def setup_world(device: str | torch.device, fsdp: bool | None = None) -> World:
    """The rank's place and device. FSDP asked for on a single process gets a process group of one rank."""
    if device == "auto":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            dist.init_process_group(backend)
        elif fsdp:
            with socket.socket() as s:  # a free port for the one-rank rendezvous
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    rank, size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    return World(rank, size, device)


# --- 2. the model -------------------------------------------------------------------------------------------


def attention_backend(setting: str, device: torch.device) -> str:
    """model.attention resolved: 'auto' is flex_attention (block masks, compiled) on CUDA, sdpa elsewhere."""
    if setting != "auto":
        return setting
    return "flex" if device.type == "cuda" else "sdpa"


def build_model(config: ModelConfig) -> tuple[DualARTransformer, object]:
    """(model in float32 on the CPU, tokenizer): whole, in one process (GRPO's policy; `s2 export`'s base)."""
    from models.dual_ar import from_qwen3, from_s2_checkpoint, init_tiny

    if config.init == "s2":
        model, tokenizer = from_s2_checkpoint(config.path)
    elif config.init == "qwen3":
        model, tokenizer = from_qwen3(config.path, seed=config.seed)
    else:
        with tempfile.TemporaryDirectory() as folder:
            init_tiny(folder, config.seed, **config.tiny.model_dump())
            model, tokenizer = from_s2_checkpoint(folder)
    model.attention = attention_backend(config.attention, torch.device("cpu"))
    return model.train(), tokenizer


def model_source(config: ModelConfig, world: World, folder: str) -> tuple[DualARTransformer, object, object]:
    """(model on the meta device, tokenizer, where its weights come from): a reader of rows that each rank calls for
    its own shards (released-format safetensors: s2, and tiny, written to `folder` first), or rank 0's full state
    dict (qwen3: the conversion needs whole tensors; None on the other ranks, which get it broadcast)."""
    from models.dual_ar import from_qwen3, init_tiny
    from models.dual_ar.checkpoint import WeightSlices, check_fits, s2_skeleton

    if config.init == "qwen3":
        full, tokenizer = from_qwen3(config.path, seed=config.seed) if world.rank == 0 else (None, None)
        shared = [full.config if full is not None else None, tokenizer]
        if world.size > 1:
            dist.broadcast_object_list(shared, src=0)
        with torch.device("meta"):
            model = DualARTransformer(shared[0])
        return model, shared[1], full.state_dict() if full is not None else None
    path = config.path if config.init == "s2" else init_tiny(folder, config.seed, **config.tiny.model_dump())
    model, tokenizer = s2_skeleton(path)
    weights = WeightSlices(path)
    check_fits({k: tuple(v.shape) for k, v in model.state_dict().items()}, weights.shapes(), str(path))
    return model, tokenizer, weights.rows


def materialize_model(loss_module: DualARLoss, world: World, source, seed: int) -> None:
    """Fill the meta-built (and sharded) loss module from `source` (see model_source); LoRA adapters start from
    their seeded initial values. Each rank allocates only its shards."""
    shapes = {n: tuple(p.shape) for n, p in loss_module.named_parameters()}

    def rows(name: str, start: int, stop: int) -> torch.Tensor:
        name = name.removeprefix("model.")
        if is_adapter(name):
            return initial_adapter(name, shapes[f"model.{name}"], seed)[start:stop]
        if callable(source):
            return source(base_name(name), start, stop)
        full = source[base_name(name)]
        return full if full.ndim == 0 else full[start:stop]

    if callable(source) or not dist.is_initialized():
        materialize(loss_module, world.device, rows)
        return
    state = None
    if world.rank == 0:
        state = {n: rows(n, 0, shape[0] if shape else 0) for n, shape in shapes.items()}
    materialize_from_rank0(loss_module, world.device, state)


def shard(loss_module: DualARLoss, dtype: torch.dtype) -> None:
    """FSDP2: every transformer block its own unit, the rest (embeddings, norms, heads) the root's. The root
    stays gathered from forward to backward: the loss's LM head uses the token embeddings there."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    model = loss_module.model
    for block in [*model.layers, *model.fast_layers]:
        fully_shard(block, mp_policy=policy)
    fully_shard(loss_module, mp_policy=policy, reshard_after_forward=False)


# --- 3. the optimizer ---------------------------------------------------------------------------------------


def is_audio(name: str) -> bool:
    """The audio modules: codebook embeddings and the fast AR; everything else is the text foundation."""
    return name.startswith(("codebook_embeddings", "fast_"))


def param_groups(model: nn.Module, config: OptimizerConfig) -> list[dict]:
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((is_audio(name), p.ndim >= 2), []).append(p)
    return [
        {
            "params": params,
            "peak_lr": config.lr_audio if audio else config.lr_text,
            "weight_decay": config.weight_decay if decay else 0.0,
            "name": f"{'audio' if audio else 'text'}{'' if decay else '_no_decay'}",
        }
        for (audio, decay), params in sorted(groups.items())
    ]


def lr_factor(step: int, c: OptimizerConfig) -> float:
    """Warmup-stable-decay: linear up over warmup_steps, flat for stable_steps, linear down to min_lr_ratio over
    decay_steps, then flat."""
    if step < c.warmup_steps:
        return (step + 1) / c.warmup_steps
    into_decay = step - c.warmup_steps - c.stable_steps
    if into_decay < 0:
        return 1.0
    if into_decay >= c.decay_steps:
        return c.min_lr_ratio
    return 1.0 - (1.0 - c.min_lr_ratio) * (into_decay + 1) / c.decay_steps


# --- 2-3. the model ready to train, and one step -----------------------------------------------------------


@dataclass
class Run:
    """The model ready to train: its loss module (FSDP-sharded when `fsdp`), the optimizer over its trainable
    parameters, and the precision context of a forward."""

    model: DualARTransformer
    loss_module: DualARLoss
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    fsdp: bool
    autocast: object
    trainable: set[str]

    def tensors(self) -> dict:
        """What a checkpoint holds of the run: the trainable parameters' and the optimizer's shards."""
        return checkpoint.sharded_state(
            {"model": self.loss_module},
            {"model": (self.loss_module, self.optimizer)},
            keep=lambda _, name: name in self.trainable,
        )


def prepare(config: TrainConfig, world: World, built: tuple | None = None) -> tuple[Run, object]:
    """(the run, tokenizer): the model built on the meta device; LoRA, activation checkpointing, torch.compile per
    block, the loss module, FSDP2; then each rank's shards materialised (no rank holds the whole model, unless the
    start is a qwen3 conversion on rank 0); AdamW. `built`: (model on meta, tokenizer, weights source) to use
    instead of config.model's (see model_source; a benchmark's random weights)."""
    rt = config.runtime
    fsdp = world.size > 1 if rt.fsdp is None else rt.fsdp
    if world.size > 1 and not fsdp:
        raise TrainError("runtime.fsdp=false needs a world of one rank: FSDP is what synchronises gradients here")
    dtype = torch.bfloat16 if rt.dtype == "bfloat16" else torch.float32
    with tempfile.TemporaryDirectory() as folder:
        model, tokenizer, source = built or model_source(config.model, world, folder)
        model.attention = attention_backend(config.model.attention, world.device)
        if config.lora.enabled:
            model = apply_lora(model, config.lora)
        model.activation_checkpointing = rt.activation_checkpointing
        if rt.compile if rt.compile is not None else world.device.type == "cuda":
            for block in [*model.layers, *model.fast_layers]:
                block.compile()
        try:
            weights = codebook_weights(config.loss, model.config.num_codebooks)
        except ValueError as exc:
            raise TrainError(str(exc)) from None
        loss_module = DualARLoss(model, weights.to(world.device), config.loss.chunk_tokens)
        if fsdp:
            shard(loss_module, dtype)
        materialize_model(loss_module, world, source, config.model.seed)
        del source
    model.train()
    # FSDP casts the weights itself (MixedPrecisionPolicy); otherwise autocast does
    autocast = torch.autocast(world.device.type, dtype=dtype) if dtype != torch.float32 and not fsdp else nullcontext()
    opt = config.optimizer
    groups = param_groups(model, opt)
    optimizer = torch.optim.AdamW(groups, lr=0.0, betas=opt.betas, eps=opt.eps, fused=True)
    trainable = {n for n, p in loss_module.named_parameters() if p.requires_grad}
    params = [p for g in groups for p in g["params"]]
    return Run(model, loss_module, optimizer, params, fsdp, autocast, trainable), tokenizer


@dataclass
class StepStats:
    """sums: this rank's loss sums (slow, fast, per codebook); tokens, frames: the global batch's learned counts;
    the rest: this rank's real tokens, row tokens, samples and model FLOPs."""

    sums: torch.Tensor
    tokens: float
    frames: float
    grad_norm: float
    real_tokens: int
    row_tokens: int
    samples: int
    flops: float


def train_step(run: Run, micro: list[Batch], world: World, config: TrainConfig) -> StepStats:
    """One optimizer step over this rank's micro-batches of the global batch."""
    model, device = run.model, world.device
    learn = config.loss.learn
    labels = [b.masked_labels(learn) for b in micro]
    learned = [int((y[:, 0] != IGNORE).sum()) for y in labels]
    frames = [int(model.is_semantic(y[:, 0]).sum()) for y in labels]
    total_tokens, total_frames = world.sum([float(sum(learned)), float(sum(frames))])
    sums = torch.zeros(2 + model.config.num_codebooks, dtype=torch.float64, device=device)
    for i, (b, y) in enumerate(zip(micro, labels)):
        if run.fsdp:
            run.loss_module.set_requires_gradient_sync(i == len(micro) - 1)
        with run.autocast:
            weights = b.token_weights(learn, config.loss.lambda_text)
            part = run.loss_module(b.inputs.to(device), y.to(device), b.segment_ids.to(device), weights)
            loss = combine(part, total_tokens, total_frames, config.loss)
        # FSDP averages gradients over ranks; the loss is already the global batch's mean
        (loss * world.size).backward()
        sums += torch.cat([torch.stack([part.slow.detach(), part.fast.detach()]), part.per_codebook]).double()
    clip = config.optimizer.grad_clip
    norm = torch.nn.utils.clip_grad_norm_(run.params, clip if clip > 0 else math.inf)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return StepStats(
        sums=sums,
        tokens=total_tokens,
        frames=total_frames,
        grad_norm=float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm),
        real_tokens=sum(int((b.segment_ids != PAD_SEGMENT).sum()) for b in micro),
        row_tokens=sum(b.segment_ids.numel() for b in micro),
        samples=sum(b.samples for b in micro),
        flops=sum(
            flops.step_flops(model.config, flops.segment_lengths(b.segment_ids), n, f)
            for b, n, f in zip(micro, learned, frames)
        ),
    )


# --- 5. resume ----------------------------------------------------------------------------------------------


def config_leaves(config: dict, prefix: str = "") -> dict:
    """A nested config dict as {"a.b.c": leaf value}: the settings a resumed run must keep, compared one by one."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(config_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def world_shape(config: TrainConfig, ranks: int) -> dict:
    """What a global batch is made of: ranks, data streams (ranks x loader workers), rows per step."""
    streams = ranks * max(1, config.data.num_workers)
    return {
        "ranks": ranks,
        "streams": streams,
        "rows": ranks * config.optimizer.accumulation * config.runtime.micro_batch,
    }


def check_resumable(saved: dict, config: TrainConfig, ranks: int, uri: str) -> None:
    """The resumed run reads the same global batches as the saved one would have: the same data settings, the same
    streams and rows per step (on any number of ranks)."""
    was, now = saved["world"], world_shape(config, ranks)
    if was["streams"] != now["streams"]:
        raise TrainError(
            f"checkpoint {uri} was written by a run of {was['streams']} data streams (ranks x data.num_workers); this run has {now['streams']}"
        )
    if was["rows"] != now["rows"]:
        raise TrainError(
            f"checkpoint {uri} was written by a run of {was['rows']} rows per step (ranks x optimizer.accumulation x runtime.micro_batch); this run has {now['rows']}"
        )
    before, current = config_leaves(saved["config"]), config_leaves(config.model_dump(mode="json"))
    for path in sorted(before):
        if path.startswith(SAME_BATCHES) and path not in RESHAPEABLE and before[path] != current.get(path):
            raise TrainError(
                f"checkpoint {uri} was written with {path}={json.dumps(before[path])}, this run has {path}={json.dumps(current.get(path))}: "
                "set it back, or start afresh in another runtime.out or with --set runtime.resume=false"
            )


def data_state(saved: dict, config: TrainConfig, world: World, uri: str) -> dict:
    """This rank's loader state from the saved ranks' states: as saved on the same world; on another number of
    ranks, the positions of the global streams this rank now reads (stream g = rank x workers + worker)."""
    was = saved["world"]
    if was["ranks"] == world.size:
        return saved["data"][world.rank]
    per_rank, was_per_rank = max(1, config.data.num_workers), was["streams"] // was["ranks"]
    if any(d["rotation"] for d in saved["data"]) or config.optimizer.accumulation % per_rank:
        raise TrainError(
            f"checkpoint {uri} resumes on {world.size} ranks instead of {was['ranks']} only when every step takes one batch "
            "from each of a rank's streams: optimizer.accumulation a multiple of data.num_workers, in both runs"
        )
    positions = {
        r * was_per_rank + int(local): p for r, d in enumerate(saved["data"]) for local, p in d["positions"].items()
    }
    first = world.rank * per_rank
    mine = {g - first: positions[g] for g in range(first, first + per_rank) if g in positions}
    return {"streams": was["streams"], "positions": mine, "rotation": 0}


def resume(run: Run, config: TrainConfig, world: World, uri: str) -> tuple[int, dict]:
    """Restore the run from the checkpoint at `uri` (written on any number of ranks); returns (step, this rank's
    loader state). Every rank checks that it resumed the step rank 0 did."""
    state = checkpoint.read_state(uri, STATE_KEYS)
    check_resumable(state, config, world.size, uri)
    if set(state["trainable"]) != run.trainable:
        raise TrainError(f"checkpoint {uri} holds other trainable parameters than this model (lora or model changed)")
    tensors = run.tensors()
    checkpoint.load(uri, tensors)
    checkpoint.apply_state(tensors, {"model": run.loss_module}, {"model": (run.loss_module, run.optimizer)})
    del tensors
    if state["world"]["ranks"] == world.size:
        set_rng_state(state["rng"][world.rank])
    steps = world.gather(state["step"])
    if any(s != steps[0] for s in steps):
        raise TrainError(f"ranks resumed different steps {steps} from {uri}: every rank must read the same checkpoint")
    return state["step"], data_state(state, config, world, uri)


def rng_state() -> dict:
    """Every generator's state as plain bytes and numbers (gathered across ranks as Python objects)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state().numpy().tobytes(),
        "cuda": [s.numpy().tobytes() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
    }


def set_rng_state(state: dict) -> None:
    def as_tensor(b: bytes) -> torch.Tensor:
        return torch.frombuffer(bytearray(b), dtype=torch.uint8)

    torch.set_rng_state(as_tensor(state["torch"]))
    if state["cuda"]:
        torch.cuda.set_rng_state_all([as_tensor(b) for b in state["cuda"]])
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))


# --- the metrics file ---------------------------------------------------------------------------------------


class MetricsLog:
    """metrics.jsonl in runtime.out (written locally, or kept in a local file and uploaded at every checkpoint
    when runtime.out is on S3). A resumed run drops the lines after its checkpoint's step."""

    def __init__(self, out: str, resumed_step: int | None):
        self.uri = storage.join(out, METRICS)
        self.remote = storage.is_s3(out)
        self.path = Path(tempfile.mkdtemp()) / METRICS if self.remote else Path(self.uri)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resumed_step is not None and storage.exists(self.uri):
            for line in storage.read_bytes(self.uri).decode().splitlines():
                try:
                    if json.loads(line)["step"] <= resumed_step:
                        kept.append(line + "\n")
                except json.JSONDecodeError:  # the torn last line of a killed run
                    continue
        self.path.write_text("".join(kept))

    def write(self, line: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")

    def publish(self) -> None:
        if self.remote:
            storage.put_file(self.path, self.uri)


# --- the run ------------------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    *,
    device: str | torch.device | None = None,
    report: Callable[[dict, str | None], None] | None = None,
    resume_from: str | None = None,
) -> dict:
    """Run the configured training to runtime.max_steps; returns the last metrics and where things are.
    `device` overrides runtime.device (a launcher that assigned one); `report(metrics, checkpoint)` is called on
    every rank at every log step and every checkpoint, with the URI of a checkpoint completed since the last
    call, or None (Ray Train's report); `resume_from` names the checkpoint to resume (default: runtime.out's
    latest when runtime.resume)."""
    rt, opt = config.runtime, config.optimizer
    if rt.cpu_threads:
        torch.set_num_threads(rt.cpu_threads)
    world = setup_world(device or rt.device, rt.fsdp)
    torch.manual_seed(rt.seed + world.rank)

    # 2. the model
    run, tokenizer = prepare(config, world)
    mc = run.model.config
    ids = TokenIds.from_tokenizer(tokenizer, mc.codebook_size)
    if config.data.seq_len > mc.max_seq_len:
        raise TrainError(f"data.seq_len {config.data.seq_len} exceeds the model's max_seq_len {mc.max_seq_len}")

    # 5. resume (before the data: it restarts the streams where they stood)
    step, data = 0, None
    uri = resume_from or (checkpoint.latest(rt.out) if rt.resume else None)
    if uri is not None:
        step, data = resume(run, config, world, uri)
    checkpointer = checkpoint.Checkpointer(rt.out, rt.keep_checkpoints, async_save=rt.async_checkpoint)

    # 4. the data (after measuring a CPU's peak, which the loader's workers would disturb)
    dtype = torch.bfloat16 if rt.dtype == "bfloat16" else torch.float32
    peak, peak_source = flops.peak_flops(world.device, dtype, rt.peak_tflops)
    loader = Loader(
        config.data,
        tokenizer,
        ids,
        mc.num_codebooks,
        rt.micro_batch,
        world.rank,
        world.size,
        state=data,
        pin_memory=world.device.type == "cuda",
    )

    # evaluation: the held-out batches, read once; the sample writer and its codec
    ev = config.eval
    held_out = held_out_batches(config, tokenizer, ids, mc.num_codebooks, world.rank, world.size) if ev.every else []
    try:
        writer = SampleWriter(config, tokenizer, ids, mc.num_codebooks, world.device) if ev.samples_every else None
    except ValueError as exc:
        raise TrainError(str(exc)) from None

    # 6. the loop
    log = MetricsLog(rt.out, step if uri else None) if world.rank == 0 else None
    progress = progress_bar(rt.max_steps, step, world.rank == 0, "train")
    window = Counter()  # sums since the last log line
    window_start = time.perf_counter()
    metrics: dict = {}
    reported: str | None = None  # the checkpoint last given to `report`
    shown: dict = {}  # the progress bar's figures
    N = mc.num_codebooks
    while step < rt.max_steps:
        factor = lr_factor(step, opt)
        for g in run.optimizer.param_groups:
            g["lr"] = g["peak_lr"] * factor

        stats = train_step(run, [next(loader) for _ in range(opt.accumulation)], world, config)
        for key in ("real_tokens", "row_tokens", "samples", "flops"):
            window[key] += getattr(stats, key)
        step += 1
        window["steps"] += 1
        progress.update(1)

        if step % rt.log_every == 0 or step == rt.max_steps:
            # global sums: loss terms, counts, and this window's throughput figures
            g = world.sum(
                [*stats.sums.tolist(), window["real_tokens"], window["row_tokens"], window["samples"], window["flops"]]
            )
            tokens, frames = max(stats.tokens, 1), max(stats.frames, 1)
            slow, fast, per_cb = g[0] / tokens, g[1] / frames, [c / frames for c in g[2 : 2 + N]]
            real, rows, samples, done = g[2 + N :]
            elapsed = time.perf_counter() - window_start
            skipped = Counter()
            for c in world.gather(dict(loader.skipped())):
                skipped.update(c)
            metrics = {
                "step": step,
                "loss": config.loss.lambda_slow * slow + config.loss.lambda_fast * fast,
                "loss_slow": slow,
                "loss_fast": fast,
                "fast_ce": per_cb,
                "grad_norm": stats.grad_norm,
                "lr_text": opt.lr_text * factor,
                "lr_audio": opt.lr_audio * factor,
                "tokens": real / window["steps"],
                "padding": 1.0 - real / max(rows, 1),
                "tokens_per_s": real / elapsed,
                "mfu": done / elapsed / (peak * world.size),
                "samples": int(samples),
                "skipped": dict(skipped),
            }
            if log is not None:
                log.write(metrics)
            shown.update(
                loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}", mfu=f"{metrics['mfu']:.1%}"
            )
            progress.set_postfix(shown)
            window, window_start = Counter(), time.perf_counter()

        if ev.every and step % ev.every == 0:
            evaluated = {"step": step, **eval_loss(run, held_out, world, config)}
            if log is not None:
                log.write(evaluated)
            shown["eval"] = f"{evaluated['eval_loss']:.3f}"  # the last eval loss stays on the bar
            progress.set_postfix(shown)
        if writer is not None and step % ev.samples_every == 0:
            writer.write(run, step, world.rank)

        saving = step % rt.ckpt_every == 0 or step == rt.max_steps
        if saving:
            state = {
                "data": world.gather(loader.state_dict()),
                "rng": world.gather(rng_state()),
                "config": config.model_dump(mode="json"),
                "world": world_shape(config, world.size),
                "trainable": sorted(run.trainable),
            }
            if log is not None:  # before `latest` names the checkpoint: a resumed run finds its lines
                log.publish()
            checkpointer.save(step, run.tensors(), state)
        if report is not None and (saving or step % rt.log_every == 0):
            done = checkpointer.completed if checkpointer.completed != reported else None
            report(metrics if metrics.get("step") == step else {"step": step}, done)
            reported = checkpointer.completed
    checkpointer.wait()
    progress.close()

    # 7. the end: the released format, LoRA merged, from the last checkpoint
    weights_out = storage.join(rt.out, MODEL_DIR)
    if world.rank == 0:
        export_checkpoint(checkpointer.completed or uri, weights_out)
    if world.size > 1:
        dist.barrier()
    return {"metrics": metrics, "model": weights_out, "out": rt.out, "peak_flops": peak, "peak_source": peak_source}


def export(state: dict, model_config, tokenizer, lora: LoraConfig | None, uri: str) -> None:
    """Write weights (names relative to the model) in the released format, with `lora`'s adapters merged."""
    from models.dual_ar.checkpoint import save_s2_checkpoint

    if lora is not None:
        state = merged_state_dict(state, lora)
    with torch.device("meta"):
        plain = DualARTransformer(model_config)
    plain.load_state_dict(state, strict=True, assign=True)
    if storage.is_s3(uri):
        with tempfile.TemporaryDirectory() as folder:
            save_s2_checkpoint(plain, tokenizer, folder)
            storage.put_dir(folder, uri)
    else:
        save_s2_checkpoint(plain, tokenizer, uri)


def export_checkpoint(uri: str, out: str) -> str:
    """`s2 export`: the checkpoint at `uri` (any number of ranks wrote it) in the released format under `out`,
    LoRA merged; in one process, without a process group. Weights the run did not train (a LoRA run's base) come
    from its model.init source."""
    state = checkpoint.read_state(uri, ("config",))
    config = TrainConfig.model_validate(state["config"])
    trained = checkpoint.load_full(uri, "model.model.")
    lora = config.lora if config.lora.enabled else None
    model, tokenizer = build_model(config.model)
    if lora is not None:
        model = apply_lora(model, lora)
    weights = {k: v.detach() for k, v in model.state_dict().items()}
    unknown = sorted(trained.keys() - weights.keys())
    if unknown:
        raise checkpoint.CheckpointError(f"checkpoint {uri} holds tensors its model has not: {', '.join(unknown[:4])}")
    export({**weights, **trained}, model.config, tokenizer, lora, out)
    return out


def progress_bar(total: int, initial: int, enabled: bool, desc: str):
    """Steps on a terminal (rank 0 only); silent otherwise."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not (enabled and sys.stderr.isatty()), desc=desc, unit="step")
