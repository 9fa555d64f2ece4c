"""Rollouts: the prompts, G samples per prompt from the policy's own sampler, and their audio.

Prompts come from a JSONL file (text, optional reference audio and its text) or from tokenized curated shards
(training.data.read_shard: the transcript, and another segment of the same speaker as the voice). Step s takes the
prompts at positions s·P .. s·P+P-1 of an endless sequence of epochs, each epoch a permutation seeded by
(seed, epoch); rollout g of the prompt at slot p of step s draws from a generator seeded by (seed, s, p, g). Both
follow from the step alone, so a resumed run draws exactly what an uninterrupted one would have.

Generation is models.dual_ar.generate, batched over the G rollouts of a prompt, restricted to the codes the codec
can decode (its codebook sizes). The waveform cache decodes codes to audio once per distinct content (a SHA-256 of
the codes): every reward that scores a rollout, and every prompt whose reference voice is given as codes, reads the
same waveform.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

import storage
from models.dual_ar.generate import generate
from models.dual_ar.prompt import IGNORE, EncodedPrompt, Reference, build_prompt
from models.dual_ar.sampling import SamplingParams
from models.dual_ar.tokens import TokenIds
from models.signal import to_mono
from schemas.grpo import PromptsConfig
from schemas.training import DataConfig
from training.data import read_shard, shard_urls


class PromptError(ValueError):
    """A prompts source that cannot be used; the message is one line naming the file (and line)."""


@dataclass(frozen=True)
class Prompt:
    """What the policy is asked to say, and the voice it should say it in (None: no reference). The reference's
    waveform is `reference_audio` at `reference_rate` when given as audio, else the decoded `reference_codes`."""

    key: str
    text: str
    reference_text: str | None = None
    reference_codes: np.ndarray | None = None  # [N, T] int64
    reference_audio: np.ndarray | None = None
    reference_rate: int | None = None

    @property
    def references(self) -> list[Reference]:
        return [] if self.reference_codes is None else [Reference(self.reference_text or "", self.reference_codes)]


def _read_audio(uri: str) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(io.BytesIO(storage.read_bytes(uri)), dtype="float32", always_2d=True)
    return to_mono(audio), rate


def _jsonl_prompts(path: str, codec) -> list[Prompt]:
    try:
        lines = storage.read_bytes(path).decode().splitlines()
    except Exception as exc:  # missing file or object
        raise PromptError(f"prompts.jsonl {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    base = path.rsplit("/", 1)[0] if "/" in path else "."
    prompts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"prompts.jsonl {path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptError(f"{where}: not JSON ({exc})") from None
        unknown = sorted(set(item) - {"text", "reference_audio", "reference_text"}) if isinstance(item, dict) else []
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip() or unknown:
            raise PromptError(
                f"{where}: expected {{text, reference_audio?, reference_text?}} with a non-empty text"
                + (f"; unknown keys {', '.join(unknown)}" if unknown else "")
            )
        if ("reference_audio" in item) != ("reference_text" in item):
            raise PromptError(f"{where}: reference_audio and reference_text go together")
        if not all(isinstance(item.get(k, ""), str) for k in ("reference_audio", "reference_text")):
            raise PromptError(f"{where}: reference_audio and reference_text must be strings")
        if "reference_audio" not in item:
            prompts.append(Prompt(key=f"line{number}", text=item["text"]))
            continue
        ref = item["reference_audio"]
        uri = ref if storage.is_s3(ref) or os.path.isabs(ref) else storage.join(base, ref)
        try:
            audio, rate = _read_audio(uri)
        except Exception as exc:  # unreadable or not audio
            raise PromptError(f"{where}: reference_audio {uri}: {type(exc).__name__}: {exc}") from None
        codes = codec.encode([audio], rate)[0].astype(np.int64)
        prompts.append(
            Prompt(
                key=f"line{number}",
                text=item["text"],
                reference_text=item["reference_text"],
                reference_codes=codes,
                reference_audio=audio,
                reference_rate=rate,
            )
        )
    return prompts


def load_prompts(config: PromptsConfig, codec, num_codebooks: int, codebook_size: int, seed: int) -> list[Prompt]:
    """The prompts of the config, in file or shard order, at most `config.limit`."""
    if config.jsonl is not None:
        prompts = _jsonl_prompts(config.jsonl, codec)
    else:
        counts: Counter = Counter()
        prompts = []
        for url in shard_urls(DataConfig(shards=config.shards, index=config.index)):
            for s in read_shard(
                url, num_codebooks, codebook_size, references=config.references, seed=seed, epoch=0, counts=counts
            ):
                ref_text, ref_codes = s.reference if s.reference is not None else (None, None)
                prompts.append(
                    Prompt(
                        key=s.key,
                        text=s.text,
                        reference_text=ref_text,
                        reference_codes=None if ref_codes is None else ref_codes.astype(np.int64),
                    )
                )
            if config.limit is not None and len(prompts) >= config.limit:
                break
    prompts = prompts[: config.limit]
    if not prompts:
        raise PromptError("prompts: the source holds no usable prompt")
    return prompts


# --- which prompts and seeds a step takes ---------------------------------------------------------------------


def step_prompts(n_prompts: int, step: int, per_step: int, seed: int) -> list[int]:
    """Indices of the prompts at the P slots of `step`: positions step·P.. of the epochs' permutations."""
    orders: dict[int, np.ndarray] = {}
    out = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, n_prompts)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n_prompts)
        out.append(int(orders[epoch][offset]))
    return out


def rollout_seeds(seed: int, step: int, slot: int, group_size: int) -> list[int]:
    """The sampler seeds of the G rollouts at `slot` of `step`: distinct for every (step, slot, g)."""
    root = np.random.SeedSequence([seed, step, slot])
    return [int(s) for s in root.generate_state(group_size, dtype=np.uint64) >> np.uint64(1)]


# --- generation and the training rows of a rollout --------------------------------------------------------------


@dataclass
class Rollout:
    """One sample of the policy: codes [N, frames] int64, and whether it ended with <|im_end|> (else it was cut at
    max_new_tokens)."""

    prompt: Prompt
    seed: int
    codes: np.ndarray
    ended: bool

    @property
    def frames(self) -> int:
        return self.codes.shape[1]


class RolloutGenerator:
    """The policy's sampler over a codec's codebooks, and the rows the loss reads a rollout back from."""

    def __init__(
        self,
        model,
        tokenizer,
        ids: TokenIds,
        codebook_sizes: Sequence[int],
        sampling: SamplingParams,
        max_new_tokens: int,
    ):
        self.model, self.tokenizer, self.ids = model, tokenizer, ids
        self.num_codebooks = model.config.num_codebooks
        self.codebook_sizes = list(codebook_sizes)
        self.sampling, self.max_new_tokens = sampling, max_new_tokens

    def encode(self, prompt: Prompt, codes: np.ndarray | None = None) -> EncodedPrompt:
        return build_prompt(
            self.tokenizer, self.ids, self.num_codebooks, prompt.text, prompt.references, target_codes=codes
        )

    def group(self, prompt: Prompt, seeds: Sequence[int]) -> list[Rollout]:
        """One rollout per seed, generated as one batch."""
        rows = self.encode(prompt).tokens
        steps = min(self.max_new_tokens, self.model.config.max_seq_len - rows.shape[1])
        codes = generate(
            self.model,
            [rows] * len(seeds),
            im_end_id=self.ids.im_end,
            max_new_tokens=self.max_new_tokens,
            sampling=self.sampling,
            seed=list(seeds),
            codebook_sizes=self.codebook_sizes,
        )
        # generate stops an item at <|im_end|> (not returned) or after `steps` frames
        return [Rollout(prompt, s, c.numpy(), c.shape[1] < steps) for s, c in zip(seeds, codes)]

    def training_pair(self, rollout: Rollout) -> tuple[Tensor, Tensor]:
        """(inputs, labels) [N+1, L] of the prompt followed by the rollout: the labels learned are exactly the
        tokens the policy sampled (its frames, and <|im_end|> when it ended with one)."""
        enc = self.encode(rollout.prompt, rollout.codes)
        if not rollout.ended:  # build_prompt closes the turn with <|im_end|>; a cut rollout never sampled it
            enc = EncodedPrompt(enc.tokens[:, :-1], enc.loss_mask[:-1], enc.audio_mask[:-1])
        return enc.training_pair()


def pad_batch(pairs: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Right-pad (inputs, labels) pairs to [B, N+1, L_max]: padding is token 0 with IGNORE labels, which causal
    attention keeps away from every real position."""
    length = max(inputs.shape[1] for inputs, _ in pairs)
    rows = pairs[0][0].shape[0]
    inputs = torch.zeros(len(pairs), rows, length, dtype=torch.long)
    labels = torch.full((len(pairs), rows, length), IGNORE, dtype=torch.long)
    for b, (x, y) in enumerate(pairs):
        inputs[b, :, : x.shape[1]] = x
        labels[b, :, : y.shape[1]] = y
    return inputs, labels


# --- audio ------------------------------------------------------------------------------------------------------


def content_key(codes: np.ndarray) -> str:
    """SHA-256 of a code array's values and shape: equal codes, equal key, whatever their dtype or source."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    return hashlib.sha256(repr(codes.shape).encode() + codes.tobytes()).hexdigest()


class WaveformCache:
    """Codes -> waveform (float32 at the codec's rate), decoding each distinct content once. Thread-safe: scorers
    on several threads share it, and two asking for the same codes wait for one decode. Keeps the last `capacity`
    waveforms. `decoded` and `hits` count rollouts decoded and served from the cache."""

    def __init__(self, codec, capacity: int = 1024):
        self.codec = codec
        self.sample_rate = codec.sample_rate
        self.capacity = capacity
        self._waves: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0
        self.hits = 0

    def get(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        keys = [content_key(c) for c in codes]
        with self._lock:
            missing = {k: c for k, c in zip(keys, codes) if k not in self._waves}
            if missing:
                for k, wave in zip(missing, self.codec.decode(list(missing.values()))):
                    self._waves[k] = wave
            self.decoded += len(missing)
            self.hits += len(keys) - len(missing)
            out = []
            for k in keys:
                self._waves.move_to_end(k)
                out.append(self._waves[k])
            while len(self._waves) > self.capacity:
                self._waves.popitem(last=False)
            return out
