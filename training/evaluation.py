"""Evaluation during training: the held-out loss, and audio a person can listen to.

- The held-out set: `eval.batches` micro-batches per rank, read once at the start from the evaluation split
  (data.eval_fraction of the sources by a hash of source.uri, or the shards of eval.index), the same at every
  evaluation, so that successive losses compare.
- eval_loss: Eq. 2-4 over that set without gradients, normalised by the set's global token and frame counts as
  the training loss is (all ranks take part: under FSDP every forward is collective).
- samples: every prompt of eval.prompts generated (a fixed seed per prompt) and decoded by eval.codec, written
  as runtime.out/samples/step-N/I.wav with the prompt's text in I.txt (rank 0 writes; every rank generates, in
  lockstep, because the sharded model's forwards are collective).
"""

from __future__ import annotations

import io
from itertools import islice

import torch
import torch.distributed as dist

import storage
from schemas.training import TrainConfig
from training.data import IGNORE, Batch, PackedDataset

SAMPLES = "samples"


def held_out_batches(config: TrainConfig, tokenizer, ids, num_codebooks: int, rank: int, world: int) -> list[Batch]:
    """This rank's fixed evaluation micro-batches."""
    data = config.data
    if config.eval.index:
        data = data.model_copy(update={"index": config.eval.index, "shards": [], "eval_fraction": 0.0})
    data = data.model_copy(update={"num_workers": 0})
    split = "train" if config.eval.index else "eval"
    dataset = PackedDataset(data, tokenizer, ids, num_codebooks, config.runtime.micro_batch, rank, world, split=split)
    return list(islice(iter(dataset), config.eval.batches))


@torch.no_grad()
def eval_loss(run, batches: list[Batch], world, config: TrainConfig) -> dict:
    """The held-out loss terms, global over ranks."""
    model, device = run.model, world.device
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # slow, fast, learned tokens, frames
    model.eval()
    for b in batches:
        learn = config.loss.learn
        labels = b.masked_labels(learn)
        weights = b.token_weights(learn, config.loss.lambda_text)
        with run.autocast:
            part = run.loss_module(b.inputs.to(device), labels.to(device), b.segment_ids.to(device), weights)
        tokens = float((labels[:, 0] != IGNORE).sum())
        frames = float(model.is_semantic(labels[:, 0]).sum())
        sums += torch.stack([part.slow.double(), part.fast.double(), *torch.tensor([tokens, frames], device=device)])
    model.train()
    slow, fast, tokens, frames = world.sum(sums.tolist())
    slow, fast = slow / max(tokens, 1), fast / max(frames, 1)
    return {
        "eval_loss": config.loss.lambda_slow * slow + config.loss.lambda_fast * fast,
        "eval_loss_slow": slow,
        "eval_loss_fast": fast,
        "eval_tokens": int(tokens),
    }


class SampleWriter:
    """Generates eval.prompts with the model being trained and writes them as WAV files."""

    def __init__(self, config: TrainConfig, tokenizer, ids, num_codebooks: int, device: torch.device):
        from models.codec import S2Codec
        from models.dual_ar.prompt import build_prompt
        from schemas.config import ModelSpec

        self.config, self.ids = config, ids
        self.codec = S2Codec.from_spec(ModelSpec(name="s2-codec", checkpoint=config.eval.codec, device="cpu"))
        if self.codec.num_codebooks != num_codebooks:
            raise ValueError(
                f"eval.codec has {self.codec.num_codebooks} codebooks, the model {num_codebooks}: they do not fit"
            )
        self.prompts = [build_prompt(tokenizer, ids, num_codebooks, text).tokens for text in config.eval.prompts]
        self.device = device

    @torch.no_grad()
    def write(self, run, step: int, rank: int) -> list[str]:
        """Generate, decode and (rank 0) write the samples of `step`; returns the WAV URIs."""
        import soundfile

        from models.dual_ar.generate import generate

        model, e = run.model, self.config.eval
        if run.fsdp:
            run.loss_module.unshard()  # the root's tensors (embeddings, heads) whole for generation's direct calls
        model.eval()
        codes = generate(
            model,
            [p.to(self.device) for p in self.prompts],
            im_end_id=self.ids.im_end,
            max_new_tokens=e.max_new_tokens,
            seed=e.seed,
            codebook_sizes=self.codec.codebook_sizes,
        )
        model.train()
        if run.fsdp:
            run.loss_module.reshard()
        written = []
        if rank == 0:
            folder = storage.join(self.config.runtime.out, SAMPLES, f"step-{step}")
            spoken = [(i, c) for i, c in enumerate(codes) if c.shape[1] > 0]
            audio = self.codec.decode([c.numpy() for _, c in spoken])
            for (i, _), wave in zip(spoken, audio):
                buf = io.BytesIO()
                soundfile.write(buf, wave, self.codec.sample_rate, format="WAV")
                storage.write_bytes(storage.join(folder, f"{i}.wav"), buf.getvalue())
                written.append(storage.join(folder, f"{i}.wav"))
            for i, text in enumerate(e.prompts):  # beside every prompt its text, spoken or not (<|im_end|> at once)
                storage.write_text(storage.join(folder, f"{i}.txt"), text + "\n")
        if dist.is_initialized():
            dist.barrier()
        return written
