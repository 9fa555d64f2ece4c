"""The codec's GAN training loop: one loop for one process or many (torch.distributed), read top to bottom.

    train(config)  ->  summary

1. The world: training.trainer's (rank and size from torch.distributed; a process group started when WORLD_SIZE > 1).
2. The generator: the released codec loaded strictly (codec.init) or random weights (codec.size), wrapped with the
   semantic head (training.codec.generator); the three discriminators (training.codec.discriminators), fresh: the
   release ships none. FSDP2 `fully_shard` above one rank: the encoder, the decoder and the quantizer's two
   transformers are their own units, the rest the root's.
3. Two AdamW optimisers (generator with the semantic head; discriminators), lr x decay^step.
4. The data: every rank decodes the sources once (training.codec.data); held-out clips are never cropped for
   training; the crops of a step are a function of the step, rank r takes its slice of the global batch.
5. Resume: the newest checkpoint in runtime.out (training.checkpoint: sharded DCP, each rank its shards, loadable on
   another number of ranks) restores both models, both optimisers and the step. Nothing else is needed: crops,
   quantizer dropout and learning rates are functions of the step, so a run killed at any moment continues exactly
   as if it had not stopped.
6. Each step: the discriminators' step on real and detached decoded crops, then the generator's step: mel, VQ
   commitment and codebook, semantic distillation and, after discriminator_warmup_steps, adversarial and feature
   matching. Clip, step; log; checkpoint; evaluate on the held-out clips every eval.every steps.
7. The end: the generator in the released format (runtime.out/codec/codec.pth + codec.json), loadable by
   models.codec, `s2 tokenize` and the reference; eval.json with the held-out metrics before and after.

metrics.jsonl (every runtime.log_every steps, global over ranks): step, loss_generator, loss_discriminator, mel,
adversarial, feature_matching, commitment, codebook, semantic, grad_norm_generator, grad_norm_discriminator,
lr_generator, lr_discriminator, codebook_perplexity (per codebook, over the step's crops), steps_per_s.
eval.jsonl: one line per evaluation (training.codec.evaluate's summary with its step).
"""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torch.distributed as dist
from torch import nn

import storage
from models.codec.checkpoint import load_codec, random_codec, save_codec
from models.codec.config import CodecConfig
from models.codec.model import S2CodecModel
from models.codec.weights import weights_file
from schemas.codec_training import CodecTrainConfig
from training import checkpoint
from training.codec import data as codec_data
from training.codec.discriminators import Discriminators
from training.codec.evaluate import CodecEvaluator, wav_name
from training.codec.generator import CodecGenerator, codebook_perplexity, residual_kept
from training.codec.losses import (
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    semantic_loss,
)
from training.trainer import MetricsLog, World, config_leaves, progress_bar, setup_world

CODEC_DIR = "codec"
EVAL_LOG = "eval.jsonl"
EVAL_SUMMARY = "eval.json"
LOSSES = ("mel", "adversarial", "feature_matching", "commitment", "codebook", "semantic")
# a resumed run must see the same crops: what decides them
SAME_CROPS = ("data.", "runtime.seed", "loss.quantizer_dropout")


class CodecTrainError(RuntimeError):
    """A run that cannot start as configured; the message is one line naming the setting."""


# --- 2. the models ------------------------------------------------------------------------------------------


def build_codec(config: CodecTrainConfig) -> S2CodecModel:
    """The generator's network in float32, in training mode, owning its weights (not mapped from a file)."""
    c = config.codec
    if c.init:
        loaded = load_codec(weights_file(c.init, "codec.init"))  # strict: every key, every shape
        model = S2CodecModel(loaded.config)
        model.load_state_dict(loaded.state_dict())
    else:
        model = random_codec(CodecConfig.tiny() if c.size == "tiny" else CodecConfig(), seed=c.seed)
    model.config = dataclasses.replace(model.config, random_init=False)  # what it saves is trained
    return model.train()


def shard(generator: CodecGenerator, discriminators: Discriminators, dtype: torch.dtype) -> None:
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    codec = generator.codec
    for unit in (codec.encoder, codec.decoder, codec.quantizer.pre_module, codec.quantizer.post_module):
        fully_shard(unit, mp_policy=policy)
    fully_shard(generator, mp_policy=policy)
    for group in (discriminators.mpd, discriminators.mrd, discriminators.mssd):
        fully_shard(group, mp_policy=policy)
    fully_shard(discriminators, mp_policy=policy)


def adamw(module: nn.Module, lr: float, config) -> torch.optim.AdamW:
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=config.betas, weight_decay=config.weight_decay)


# --- 2-3. the models ready to train, and one step ------------------------------------------------------------


@dataclass
class CodecRun:
    """The generator (with its semantic head) and the discriminators, FSDP-sharded when the world has several ranks;
    their optimisers and trainable parameters; the teacher; the mel loss; the precision context of a forward."""

    config: CodecTrainConfig
    codec_config: CodecConfig
    generator: CodecGenerator
    discriminators: Discriminators
    teacher: object | None
    optimizers: dict
    params: dict
    mel_loss: MultiScaleMelLoss
    autocast: object
    device: torch.device

    @property
    def models(self) -> dict:
        return {"generator": self.generator, "discriminators": self.discriminators}


def prepare(config: CodecTrainConfig, world: World) -> CodecRun:
    rt, opt = config.runtime, config.optimizer
    fsdp = world.size > 1 if rt.fsdp is None else rt.fsdp
    if world.size > 1 and not fsdp:
        raise CodecTrainError("runtime.fsdp=false needs a world of one rank: FSDP is what synchronises gradients here")
    dtype = torch.bfloat16 if rt.dtype == "bfloat16" else torch.float32
    codec = build_codec(config)
    teacher = None
    if config.semantic.enabled and config.codec.train == "all":
        from training.codec.teacher import W2vBertTeacher

        teacher = W2vBertTeacher(config.semantic.teacher, config.semantic.layer, world.device, dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.codec.seed)
        generator = CodecGenerator(codec, teacher.dim if teacher else None, config.codec.train == "decoder")
        discriminators = Discriminators(config.discriminators)
    generator.to(world.device)
    discriminators.to(world.device)
    if fsdp:
        shard(generator, discriminators, dtype)
    # FSDP casts the weights itself (MixedPrecisionPolicy); otherwise autocast does
    autocast = torch.autocast(world.device.type, dtype=dtype) if dtype != torch.float32 and not fsdp else nullcontext()
    models = {"generator": generator, "discriminators": discriminators}
    lrs = {"generator": opt.lr_generator, "discriminators": opt.lr_discriminator}
    optimizers = {name: adamw(m, lrs[name], opt) for name, m in models.items()}
    params = {name: [p for p in m.parameters() if p.requires_grad] for name, m in models.items()}
    mel_loss = MultiScaleMelLoss(codec.config.sample_rate, config.loss.mel_windows, config.loss.mel_bins)
    return CodecRun(
        config,
        codec.config,
        generator,
        discriminators,
        teacher,
        optimizers,
        params,
        mel_loss.to(world.device),
        autocast,
        world.device,
    )


@dataclass
class StepResult:
    loss_g: torch.Tensor
    loss_d: torch.Tensor
    parts: dict  # the generator's loss components, unweighted
    norms: dict  # gradient norms before clipping, per model
    codes: torch.Tensor
    adversarial: bool  # whether the generator had its adversarial and feature-matching terms


def train_step(run: CodecRun, x: torch.Tensor, kept: torch.Tensor, step: int) -> StepResult:
    """The discriminators' step on real and detached decoded crops, then the generator's step (crops x [B, T] on the
    device, kept [B]: residual codebooks each crop uses)."""
    config, opt, lc = run.config, run.config.optimizer, run.config.loss
    cc = run.codec_config
    target = None
    if run.teacher is not None:
        target = run.teacher.features(x, cc.sample_rate, x.shape[-1] // cc.frame_length)
    with run.autocast:
        out = run.generator(x, kept)
    # the discriminators' step: real and (detached) decoded crops in one forward
    with run.autocast:
        scores = run.discriminators(torch.cat([x, out.audio.detach()]))
    loss_d = discriminator_loss(*_halves(scores), lc.adversarial_kind)
    norms = {
        "discriminators": _step(
            run.optimizers["discriminators"], loss_d, run.params["discriminators"], opt.grad_clip_discriminator
        )
    }

    # the generator's step
    zero = torch.zeros((), device=run.device)
    parts = {
        "mel": run.mel_loss(out.audio, x),
        "commitment": out.commitment,
        "codebook": out.codebook,
        "semantic": semantic_loss(out.semantic, target, config.semantic.kind) if target is not None else zero,
        "adversarial": zero,
        "feature_matching": zero,
    }
    adversarial = step >= opt.discriminator_warmup_steps
    if adversarial:
        with run.autocast:
            real, fake = _halves(run.discriminators(torch.cat([x, out.audio])))
        parts["adversarial"] = generator_adversarial_loss(fake, lc.adversarial_kind)
        parts["feature_matching"] = feature_matching_loss(real, fake)
    weights = {
        "mel": lc.mel,
        "adversarial": lc.adversarial,
        "feature_matching": lc.feature_matching,
        "commitment": lc.commitment,
        "codebook": lc.codebook,
        "semantic": config.semantic.weight,
    }
    loss_g = sum(weights[k] * parts[k] for k in LOSSES)
    norms["generator"] = _step(run.optimizers["generator"], loss_g, run.params["generator"], opt.grad_clip_generator)
    return StepResult(loss_g, loss_d, parts, norms, out.codes, adversarial)


# --- 5. checkpoints: the Dual-AR trainer's (training.checkpoint) -----------------------------------------------


def full_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _pairs(models: dict, optimizers: dict) -> dict:
    return {name: (models[name], optimizers[name]) for name in models}


def save_checkpoint(
    checkpointer: checkpoint.Checkpointer, config: CodecTrainConfig, step: int, models: dict, optimizers: dict
) -> None:
    """Both models and both optimisers, each rank its shards (training.checkpoint, DCP: a checkpoint written by N
    ranks loads on M); a collective: every rank calls it."""
    tensors = checkpoint.sharded_state(models, _pairs(models, optimizers))
    checkpointer.save(step, tensors, {"config": config.model_dump(mode="json")})


def resume(config: CodecTrainConfig, models: dict, optimizers: dict) -> int:
    """The step of the newest checkpoint, its states restored; 0 without one. Nothing else is needed: crops,
    quantizer dropout and learning rates are functions of the step."""
    uri = checkpoint.latest(config.runtime.out) if config.runtime.resume else None
    if uri is None:
        return 0
    state = checkpoint.read_state(uri, ("step", "config"))
    before, now = config_leaves(state["config"]), config_leaves(config.model_dump(mode="json"))
    for path in sorted(before):
        if path.startswith(SAME_CROPS) and before[path] != now.get(path):
            raise CodecTrainError(
                f"checkpoint {uri} was written with {path}={json.dumps(before[path])}, this run has {path}={json.dumps(now.get(path))}: "
                "set it back, or start afresh in another runtime.out or with --set runtime.resume=false"
            )
    tensors = checkpoint.sharded_state(models, _pairs(models, optimizers))
    checkpoint.load(uri, tensors)  # CheckpointError naming the checkpoint when its tensors do not fit
    checkpoint.apply_state(tensors, models, _pairs(models, optimizers))
    return int(state["step"])


def plain_codec(generator: CodecGenerator) -> S2CodecModel | None:
    """The generator's network as one unsharded float32 model on the CPU on rank 0 (None elsewhere); a collective."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(generator, options=full_options())
    if dist.is_initialized() and dist.get_rank() != 0:
        return None
    with torch.device("meta"):
        model = S2CodecModel(generator.codec.config)
    prefix = "codec."
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, assign=True)
    return model.eval()


def export(model: S2CodecModel, uri: str) -> str:
    """The released format (codec.pth + codec.json) at `uri`, local or s3://."""
    if storage.is_s3(uri):
        with tempfile.TemporaryDirectory() as folder:
            save_codec(model, folder)
            storage.put_dir(folder, uri)
    else:
        save_codec(model, uri)
    return storage.join(uri, "codec.pth")


# --- evaluation on the held-out clips -------------------------------------------------------------------------


class HeldOut:
    """The held-out clips' first eval.max_seconds, evaluated on rank 0; eval.jsonl, and WAVs when asked."""

    def __init__(self, config: CodecTrainConfig, clips: codec_data.ClipSet, sample_rate: int):
        limit = int(config.eval.max_seconds * sample_rate)
        self.names = [wav_name(i, k) for i, k in enumerate(clips.keys)]
        self.audio = [np.array(clips.clip(i)[:limit]) for i in range(len(clips.keys))]
        self.out = config.runtime.out
        self.sample_rate = sample_rate
        self.evaluator = CodecEvaluator(sample_rate)

    def run(self, generator: CodecGenerator, step: int, wavs: str | None) -> dict | None:
        """A collective; the summary on rank 0 (None elsewhere or without held-out clips)."""
        if not self.audio:
            return None
        model = plain_codec(generator)
        if model is None:
            return None
        summary, _, outputs = self.evaluator.evaluate(model, self.audio)
        summary = {"step": step, **summary}
        log = storage.join(self.out, EVAL_LOG)
        previous = storage.read_bytes(log).decode() if storage.exists(log) else ""
        kept = [line for line in previous.splitlines() if line and json.loads(line)["step"] < step]
        storage.write_bytes(log, ("\n".join([*kept, json.dumps(summary)]) + "\n").encode())
        if wavs is not None:
            for name, reference, output in zip(self.names, self.audio, outputs):
                self.write_wav(f"eval/{wavs}/{name}", output)
                if wavs == "before":
                    self.write_wav(f"eval/reference/{name}", reference)
        return summary

    def write_wav(self, relative: str, audio: np.ndarray) -> None:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(audio, -1, 1), self.sample_rate, format="WAV", subtype="PCM_16")
        storage.write_bytes(storage.join(self.out, relative), buffer.getvalue())

    def summaries(self) -> dict:
        """eval.json: the first evaluation as `before` and the last as `after`."""
        lines = storage.read_bytes(storage.join(self.out, EVAL_LOG)).decode().splitlines()
        before, after = json.loads(lines[0]), json.loads(lines[-1])
        both = {"before": before, "after": after}
        storage.write_bytes(storage.join(self.out, EVAL_SUMMARY), (json.dumps(both, indent=1) + "\n").encode())
        return both


# --- the run ------------------------------------------------------------------------------------------------


def train(
    config: CodecTrainConfig,
    *,
    device: str | torch.device | None = None,
    report: Callable[[dict], None] | None = None,
) -> dict:
    """Run the configured training to runtime.max_steps; returns the last metrics and where things are."""
    rt, opt, lc = config.runtime, config.optimizer, config.loss
    if rt.cpu_threads:
        torch.set_num_threads(rt.cpu_threads)
    world = setup_world(device or rt.device, rt.fsdp)
    if config.data.batch_size % world.size:
        raise CodecTrainError(f"data.batch_size {config.data.batch_size} does not divide by the {world.size} ranks")

    # 2-3. the models and optimisers
    run = prepare(config, world)
    cc = run.codec_config
    generator, models, optimizers = run.generator, run.models, run.optimizers

    # 4. the data
    clips = codec_data.read_clips(config.data.sources, cc.sample_rate)
    train_clips, heldout_clips = codec_data.split(clips, config.data.heldout_clips)
    length = codec_data.crop_length(config.data.crop_seconds, cc.sample_rate, cc.frame_length)
    per_rank = config.data.batch_size // world.size
    mine = range(world.rank * per_rank, (world.rank + 1) * per_rank)
    heldout = HeldOut(config, heldout_clips, cc.sample_rate)

    # 5. resume
    step = resume(config, models, optimizers)
    checkpointer = checkpoint.Checkpointer(rt.out, rt.keep_checkpoints)
    if step == 0:
        heldout.run(generator, 0, "before")

    # 6. the loop
    log = MetricsLog(rt.out, step if step else None) if world.rank == 0 else None
    progress = progress_bar(rt.max_steps, step, world.rank == 0, "codec")
    metrics: dict = {}
    window_steps, window_start = 0, time.perf_counter()
    while step < rt.max_steps:
        factor = opt.decay**step
        for name, lr in (("generator", opt.lr_generator), ("discriminators", opt.lr_discriminator)):
            for g in optimizers[name].param_groups:
                g["lr"] = lr * factor
        x = torch.from_numpy(codec_data.crops(train_clips, step, mine, length, config.data.seed)).to(world.device)
        draws = torch.Generator().manual_seed(rt.seed * 1_000_003 + step)
        kept = residual_kept(config.data.batch_size, cc.residual_codebooks, lc.quantizer_dropout, draws, world.device)
        kept = kept[mine.start : mine.stop]
        result = train_step(run, x, kept, step)
        loss_g, loss_d, parts, norms = result.loss_g, result.loss_d, result.parts, result.norms
        step += 1
        window_steps += 1
        progress.update(1)

        if step % rt.log_every == 0 or step == rt.max_steps:
            values = world.sum(
                [float(loss_g.detach()), float(loss_d.detach()), *(float(parts[k].detach()) for k in LOSSES)]
            )
            values = [v / world.size for v in values]
            codes = torch.cat(world.gather(result.codes.cpu()))
            metrics = {
                "step": step,
                "loss_generator": values[0],
                "loss_discriminator": values[1],
                **dict(zip(LOSSES, values[2:])),
                "grad_norm_generator": norms["generator"],
                "grad_norm_discriminator": norms["discriminators"],
                "lr_generator": opt.lr_generator * factor,
                "lr_discriminator": opt.lr_discriminator * factor,
                "codebook_perplexity": codebook_perplexity(codes, cc.codebook_sizes),
                "steps_per_s": window_steps / (time.perf_counter() - window_start),
                "adversarial_on": result.adversarial,
            }
            if log is not None:
                log.write(metrics)
            progress.set_postfix(mel=f"{metrics['mel']:.3f}", d=f"{metrics['loss_discriminator']:.3f}")
            if report is not None:
                report(metrics)
            window_steps, window_start = 0, time.perf_counter()

        if step % config.eval.every == 0 and step != rt.max_steps:
            heldout.run(generator, step, None)
        if step % rt.ckpt_every == 0 or step == rt.max_steps:
            save_checkpoint(checkpointer, config, step, models, optimizers)
            if log is not None:
                log.publish()
    progress.close()

    # 7. the end: the released format, and the last evaluation
    heldout.run(generator, step, "after")
    final = plain_codec(generator)
    weights_out = storage.join(rt.out, CODEC_DIR)
    summary = {"metrics": metrics, "codec": storage.join(weights_out, "codec.pth"), "out": rt.out, "eval": None}
    if final is not None:
        export(final, weights_out)
        if heldout.audio:
            summary["eval"] = heldout.summaries()
    if world.size > 1:
        dist.barrier()
    return summary


def _halves(scores: list) -> tuple[list, list]:
    """Discriminator outputs on [real; decoded] -> (outputs on real, outputs on decoded)."""

    def half(t: torch.Tensor, first: bool) -> torch.Tensor:
        n = t.shape[0] // 2
        return t[:n] if first else t[n:]

    return tuple(
        [(half(logits, first), [half(f, first) for f in features]) for logits, features in scores]
        for first in (True, False)
    )


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list, limit: float) -> float:
    """zero, backward, clip to `limit` (0: no clipping), step; the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, limit if limit > 0 else float("inf"))
    optimizer.step()
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
