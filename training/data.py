"""Tokenized shards to packed training rows: read, pick references, build prompts, shuffle, pack, split, resume.

A shard (WebDataset tar, local or s3://) holds per sample `KEY.json` (the schemas.sample.Sample record),
`KEY.codes.npy` (int16 [N, T] codec codes) and `KEY.flac` (not read here). A sample without codes or transcript,
with codes of another shape or range (or another frame count than its JSON's `codec.frames`), or whose record
does not parse is skipped and counted by reason. Each kept sample becomes the inference prompt layout
(models.dual_ar.prompt): a system turn with a reference voice (the text and codes of another segment of the same `source.speaker`, else of
the same `source.uri`, from the same shard; none when the shard has no other), the user turn with the rendered
rich transcript, and the assistant turn `<|voice|>` + codes + `<|im_end|>`. The batch carries the true next
tokens as labels and, separately, the reference mask m_t of Eq. 2 (true only on the assistant's codes and its
final `<|im_end|>`), which the loss applies.

Streams. The data is read by `streams` = world size x max(1, num_workers) independent streams; stream s belongs
to rank s // W, loader worker s % W. Each epoch the shard list is permuted (seed, epoch); with at least as many
shards as streams, stream s reads shards s, s + streams, ...; with fewer, every stream reads every shard and keeps
the samples j of shard i with (i + j) % streams == s. A stream reads `shuffle_buffer` samples, permutes them
(seeded by seed, epoch, stream, block) and yields them; packing then fills rows of `seq_len` tokens greedily in
that order (a sample that does not fit closes the row; padding is its own segment). The same config and stream
count give the same batches, whatever the world size: one process with 2 loader workers and 2 accumulation steps
sees the global batches of 2 ranks with 1 stream each.

Resume. A stream's position is (epoch, block, the block's first shard and sample, offset in the permuted block),
a few integers. Every batch carries its stream's position *after* it: the first sample of the row being filled
(whose samples were read but not yet yielded). Restarting a stream there re-reads one shard and gives exactly the
batches an uninterrupted stream would have given next.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import storage
from models.dual_ar.prompt import SPEECH_HEADER, WITH_REFERENCE, WITHOUT_REFERENCE, Reference, build_prompt
from models.dual_ar.tokens import IM_END, IM_START, VOICE, TokenIds
from schemas.training import DataConfig
from schemas.transcript import RichTranscript

IGNORE = -100
PAD_SEGMENT = 0


class DataError(ValueError):
    """Shards that cannot be read or used; the message is one line."""


# --- the shard list ---------------------------------------------------------------------------------------------


def shard_urls(config: DataConfig) -> list[str]:
    """The shard URIs of the config: its list, or those of index.json resolved against the index's folder."""
    if config.shards:
        return list(config.shards)
    try:
        with storage.open_read(config.index) as f:
            index = json.loads(f.read())
        urls = [entry["url"] for entry in index["shardlist"]]
    except Exception as exc:  # missing file or object, not JSON, not the wids layout
        raise DataError(
            f"data.index {config.index}: cannot read a wids shard list ({type(exc).__name__}: {exc})"
        ) from None
    if not urls:
        raise DataError(f"data.index {config.index}: lists no shards")
    base = config.index.rsplit("/", 1)[0] if "/" in config.index else "."
    return [u if u.startswith("s3://") or os.path.isabs(u) else f"{base}/{u}" for u in urls]


# --- one shard ----------------------------------------------------------------------------------------------


@dataclass
class ShardSample:
    """One usable sample of a shard, its reference voice resolved (None: no other segment to take it from)."""

    key: str
    text: str
    codes: np.ndarray  # int16 [N, T]
    reference: tuple[str, np.ndarray] | None = None
    source: str = ""  # the source file's URI: what the held-out split is decided by
    speaker: str | None = None  # source.speaker: the source-level speaker id
    start_s: float = 0.0  # where the segment lies in its source
    end_s: float = 0.0
    body: str = ""  # the transcript without speaker markers (tags kept): one turn of a dialogue
    voices: list[tuple[str, np.ndarray]] = field(default_factory=list)  # a dialogue's references, one per speaker


def _parse(record: dict, num_codebooks: int, codebook_size: int, counts: Counter) -> tuple[ShardSample, str] | None:
    """(sample, voice group) of a grouped tar record, or None (counted under the reason)."""
    if "codes.npy" not in record:
        counts["skipped_no_codes"] += 1
        return None
    meta = json.loads(record["json"]) if "json" in record else None
    if not meta or not meta.get("transcript"):
        counts["skipped_no_transcript"] += 1
        return None
    codes = np.load(io.BytesIO(record["codes.npy"]), allow_pickle=False)
    if (
        codes.ndim != 2
        or codes.shape[0] != num_codebooks
        or codes.shape[1] == 0
        or codes.min() < 0
        or codes.max() >= codebook_size
        or (meta.get("codec") or {}).get("frames", codes.shape[1]) != codes.shape[1]  # codes of another encoding
    ):
        counts["skipped_bad_codes"] += 1
        return None
    source = meta.get("source") or {}
    text = RichTranscript.model_validate(meta["transcript"]).render()
    group = f"speaker:{source['speaker']}" if source.get("speaker") else f"uri:{source.get('uri', meta['key'])}"
    transcript = RichTranscript.model_validate(meta["transcript"])
    sample = ShardSample(
        key=meta["key"],
        text=text,
        codes=codes,
        source=source.get("uri", meta["key"]),
        speaker=source.get("speaker"),
        start_s=float(source.get("start_s") or 0.0),
        end_s=float(source.get("end_s") or 0.0),
        body=transcript.tagged_text(),
    )
    return sample, group


def read_shard(
    url: str,
    num_codebooks: int,
    codebook_size: int,
    *,
    references: bool,
    seed: int,
    epoch: int,
    counts: Counter,
    dialogues: DataConfig | None = None,
) -> list[ShardSample]:
    """The usable samples of a shard in key order, each with a reference: another member of its voice group
    (same speaker, else same source) drawn with a generator seeded by (seed, epoch, key)."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    samples: list[ShardSample] = []
    groups: dict[str, list[int]] = defaultdict(list)
    try:
        with storage.open_read(url) as stream:
            members = tar_file_iterator(stream, select_files=lambda name: not name.endswith(".flac"))
            for record in group_by_keys({**m, "__url__": url} for m in members):
                try:
                    parsed = _parse(record, num_codebooks, codebook_size, counts)
                except (ValueError, KeyError, TypeError):  # a record that is not JSON, a Sample or a .npy array
                    counts["skipped_bad_record"] += 1
                    continue
                if parsed is not None:
                    groups[parsed[1]].append(len(samples))
                    samples.append(parsed[0])
    except Exception as exc:  # an unreachable, truncated or malformed shard ends the run: its data would be missing
        raise DataError(f"shard {url}: {type(exc).__name__}: {exc}") from None
    order = sorted(range(len(samples)), key=lambda i: samples[i].key)
    if references:
        rank = {i: r for r, i in enumerate(order)}
        for members in groups.values():
            members.sort(key=rank.get)
            for k, i in enumerate(members):
                if len(members) > 1:  # any other member, drawn uniformly
                    step = 1 + random.Random(f"{seed}/{epoch}/{samples[i].key}").randrange(len(members) - 1)
                    other = samples[members[(k + step) % len(members)]]
                    samples[i].reference = (other.text, other.codes)
    ordered = [samples[i] for i in order]
    if dialogues is not None and dialogues.dialogue_fraction > 0:
        return join_dialogues(ordered, dialogues, epoch, references)
    return ordered


# --- dialogues: consecutive segments of one source as one multi-speaker sample ----------------------------


def _size(sample: ShardSample) -> int:
    """An upper bound of the tokens a segment adds to a dialogue: its frames, the bytes of its text (a token is at
    least one byte) and its speaker marker."""
    return sample.codes.shape[1] + len(sample.body.encode()) + 8


def join_dialogues(samples: list[ShardSample], config: DataConfig, epoch: int, references: bool) -> list[ShardSample]:
    """A shard's samples (key order) with consecutive segments of a source joined into dialogues: walking each
    source's segments in time order, a segment starts a dialogue with probability data.dialogue_fraction (seeded
    by seed, epoch and source) that takes the following segments while their size fits data.max_tokens; else it
    stays a sample of its own. A dialogue's turns are `<|speaker:k|>` by the order in which its source speakers
    first speak, with `[pause]` where the gap between two segments is at least data.dialogue_pause_s; its codes
    are the segments' codes in order; its reference voices, one per speaker, are other segments of that speaker
    in the shard. Segments without a source speaker stay single."""
    budget = config.max_tokens or config.seq_len
    by_source: dict[str, list[ShardSample]] = defaultdict(list)
    by_speaker: dict[str, list[ShardSample]] = defaultdict(list)
    for s in samples:
        by_source[s.source].append(s)
        if s.speaker is not None:
            by_speaker[s.speaker].append(s)
    out: list[ShardSample] = []
    for source in sorted(by_source):
        segments = sorted(by_source[source], key=lambda s: (s.start_s, s.key))
        rng = random.Random(f"{config.seed}/{epoch}/dialogue/{source}")
        i = 0
        while i < len(segments):
            j, size = i + 1, _size(segments[i])
            if segments[i].speaker is not None and rng.random() < config.dialogue_fraction:
                while j < len(segments) and segments[j].speaker is not None and size + _size(segments[j]) <= budget:
                    size += _size(segments[j])
                    j += 1
            if j - i == 1:
                out.append(segments[i])
            else:
                out.append(_dialogue(segments[i:j], by_speaker, config, rng if references else None))
            i = j
    return sorted(out, key=lambda s: s.key)


def _dialogue(parts: list[ShardSample], by_speaker: dict, config: DataConfig, rng: random.Random | None) -> ShardSample:
    speakers = list(dict.fromkeys(p.speaker for p in parts))
    turns = []
    for k, p in enumerate(parts):
        pause = "[pause] " if k and p.start_s - parts[k - 1].end_s >= config.dialogue_pause_s else ""
        turns.append(f"<|speaker:{speakers.index(p.speaker)}|>{pause}{p.body}")
    voices = []
    for index, speaker in enumerate(speakers if rng is not None else []):
        others = [s for s in by_speaker[speaker] if all(s is not p for p in parts)]
        if others:
            voice = others[rng.randrange(len(others))]
            voices.append((f"<|speaker:{index}|>{voice.body}", voice.codes))
    return ShardSample(
        key=f"{parts[0].key}+{len(parts) - 1}",
        text="".join(turns),
        codes=np.concatenate([p.codes for p in parts], axis=1),
        source=parts[0].source,
        speaker=parts[0].speaker,
        start_s=parts[0].start_s,
        end_s=parts[-1].end_s,
        voices=voices,
    )


# --- building one training sample ---------------------------------------------------------------------------


@dataclass
class Example:
    """One sample in next-token form: inputs, labels [N+1, L] (labels: the true next tokens; rows 1..N codes at
    audio positions, IGNORE at text positions) and the Eq. 2 mask [L] (True where the label is learned: the
    assistant's codes and final <|im_end|>, as the released code learns). text_mask [L]: the other labels after the
    system turn (the user turn's text, the assistant's header), which Eq. 2 as printed learns too (loss.learn)."""

    inputs: Tensor
    labels: Tensor
    loss_mask: Tensor
    text_mask: Tensor | None = None

    @property
    def length(self) -> int:
        return self.inputs.shape[1]


class PieceEncoder:
    """What build_prompt asks of a tokenizer (`encode(text, add_special_tokens=False)`), answered by its Rust backend
    without transformers' per-call overhead (about 4x faster, the same ids), the prompt's fixed pieces encoded once."""

    FIXED = (
        f"{IM_START}system\n",
        WITH_REFERENCE,
        WITHOUT_REFERENCE,
        SPEECH_HEADER,
        f"{IM_END}\n",
        f"{IM_START}user\n",
        f"{IM_START}assistant\n{VOICE}",
        IM_END,
    )

    def __init__(self, tokenizer):
        self.backend = tokenizer.backend_tokenizer
        self.fixed = {text: self._encode(text) for text in self.FIXED}

    def _encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.fixed.get(text) or self._encode(text)


def build_example(tokenizer, ids: TokenIds, num_codebooks: int, sample: ShardSample, max_len: int) -> Example | None:
    """The sample in the inference layout, with its reference if it fits in `max_len` tokens, else without;
    None when even that is too long."""
    voices = sample.voices or ([sample.reference] if sample.reference is not None else [])
    attempts = [[Reference(*v) for v in voices], []] if voices else [[]]
    for refs in attempts:
        prompt = build_prompt(tokenizer, ids, num_codebooks, sample.text, refs, target_codes=sample.codes)
        if prompt.tokens.shape[1] - 1 <= max_len:
            labels = prompt.tokens[:, 1:].clone()
            labels[1:, ~prompt.audio_mask[1:]] = IGNORE
            loss_mask = prompt.loss_mask[1:].clone()
            system_end = int((prompt.tokens[0] == ids.im_end).nonzero()[0, 0])  # its "<|im_end|>\n" closes it
            after_system = torch.arange(1, prompt.tokens.shape[1]) >= system_end + 2
            return Example(prompt.tokens[:, :-1], labels, loss_mask, after_system & ~loss_mask)
    return None


# --- packed batches -----------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Packed rows: inputs, labels [B, N+1, S]; loss_mask, segment_ids [B, S] (padding: segment 0, nothing
    learned). `stream` and `position` say where the stream that made it stands after it; `counts` are that
    stream's skipped samples so far in this process."""

    inputs: Tensor
    labels: Tensor
    loss_mask: Tensor
    segment_ids: Tensor
    samples: int
    stream: int = 0
    position: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    text_mask: Tensor | None = None  # [B, S]: see Example

    def _apply(self, fn) -> Batch:
        tensors = (self.inputs, self.labels, self.loss_mask, self.segment_ids)
        text = fn(self.text_mask) if self.text_mask is not None else None
        return Batch(*map(fn, tensors), self.samples, self.stream, self.position, self.counts, text)

    def to(self, device: torch.device) -> Batch:
        return self._apply(lambda t: t.to(device=device, non_blocking=True))

    def pin_memory(self) -> Batch:
        return self._apply(lambda t: t.pin_memory())

    def learned(self, learn: str = "assistant") -> Tensor:
        """m_t of Eq. 2 [B, S]: the assistant's codes and <|im_end|> ('assistant', the released code's), or every
        label after the system turn ('non_reference', Eq. 2 as printed; the reference audio is in the system turn)."""
        if learn == "non_reference" and self.text_mask is not None:
            return self.loss_mask | self.text_mask
        return self.loss_mask

    def masked_labels(self, learn: str = "assistant") -> Tensor:
        """Labels with IGNORE wherever the Eq. 2 mask is 0: what the model's forward takes."""
        return self.labels.masked_fill(~self.learned(learn)[:, None], IGNORE)

    def token_weights(self, learn: str, lambda_text: float) -> Tensor | None:
        """lambda_t of Eq. 2 [B, S]: 1 on the assistant's labels, lambda_text on the other learned ones; None when
        every learned label weighs 1."""
        if learn != "non_reference" or lambda_text == 1.0 or self.text_mask is None:
            return None
        return torch.where(self.text_mask, lambda_text, 1.0)


def pack_rows(rows: list[list[Example]], seq_len: int, num_codebooks: int, pad_id: int) -> Batch:
    """Rows of examples -> one Batch of width seq_len; example k of a row is segment k+1."""
    inputs, labels, masks, texts, segments = [], [], [], [], []
    for row in rows:
        pad = seq_len - sum(ex.length for ex in row)
        pad_inputs = torch.zeros(num_codebooks + 1, pad, dtype=torch.long)
        pad_inputs[0] = pad_id
        inputs.append(torch.cat([ex.inputs for ex in row] + [pad_inputs], dim=1))
        labels.append(torch.cat([ex.labels for ex in row] + [torch.full((num_codebooks + 1, pad), IGNORE)], dim=1))
        masks.append(torch.cat([ex.loss_mask for ex in row] + [torch.zeros(pad, dtype=torch.bool)]))
        texts.append(
            torch.cat(
                [ex.text_mask if ex.text_mask is not None else torch.zeros_like(ex.loss_mask) for ex in row]
                + [torch.zeros(pad, dtype=torch.bool)]
            )
        )
        segments.append(
            torch.cat([torch.full((ex.length,), k + 1) for k, ex in enumerate(row)] + [torch.full((pad,), PAD_SEGMENT)])
        )
    return Batch(
        torch.stack(inputs),
        torch.stack(labels),
        torch.stack(masks),
        torch.stack(segments),
        sum(len(r) for r in rows),
        text_mask=torch.stack(texts),
    )


def held_out(source: str, fraction: float) -> bool:
    """Whether a source belongs to the evaluation split: the hash of its URI falls below `fraction`, so that all
    of a source's segments (and its speakers' turns in it) are on the same side."""
    return int(hashlib.sha256(source.encode()).hexdigest()[:12], 16) / 16**12 < fraction


class Stream:
    """One stream: endless (sample, position) pairs, epochs following each other; see the module doc. `split`:
    "train" or "eval", the sources on either side of data.eval_fraction (all of them when it is 0)."""

    def __init__(
        self,
        urls: list[str],
        config: DataConfig,
        stream: int,
        streams: int,
        num_codebooks: int,
        codebook_size: int,
        split: str = "train",
    ):
        self.urls, self.config, self.stream, self.streams, self.split = urls, config, stream, streams, split
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size
        self.counts: Counter = Counter()

    def _epoch_shards(self, epoch: int) -> list[int]:
        order = list(range(len(self.urls)))
        random.Random(f"{self.config.seed}/{epoch}").shuffle(order)
        return order[self.stream :: self.streams] if len(order) >= self.streams else order

    def _kept(self, shard: int, j: int) -> bool:
        return len(self.urls) >= self.streams or (shard + j) % self.streams == self.stream

    def samples(self, position: dict | None) -> Iterator[tuple[ShardSample, dict]]:
        """(sample, the position at which a restarted stream yields this sample first)."""
        p = position or {"epoch": 0, "block": 0, "shard": 0, "sample": 0, "offset": 0}
        epoch, block, shard, j, offset = p["epoch"], p["block"], p["shard"], p["sample"], p["offset"]
        used_any = False
        while True:
            shards = self._epoch_shards(epoch)
            loaded: tuple[int, list[ShardSample]] | None = None
            while shard < len(shards):
                start = (shard, j)
                items: list[ShardSample] = []
                while len(items) < self.config.shuffle_buffer and shard < len(shards):
                    if loaded is None or loaded[0] != shard:
                        loaded = (shard, self._read(shards[shard], epoch))
                    content = loaded[1]
                    while j < len(content) and len(items) < self.config.shuffle_buffer:
                        if self._kept(shards[shard], j):
                            items.append(content[j])
                        j += 1
                    if j >= len(content):
                        shard, j = shard + 1, 0
                random.Random(f"{self.config.seed}/{epoch}/{self.stream}/{block}").shuffle(items)
                for k in range(offset, len(items)):
                    used_any = True
                    yield items[k], {"epoch": epoch, "block": block, "shard": start[0], "sample": start[1], "offset": k}
                block, offset = block + 1, 0
            if not used_any:
                raise DataError(
                    f"stream {self.stream} of {self.streams} found no usable sample in a whole epoch of {len(shards)} shards ({_counts_text(self.counts)})"
                )
            epoch, block, shard, j, offset = epoch + 1, 0, 0, 0, 0

    def _read(self, index: int, epoch: int) -> list[ShardSample]:
        samples = read_shard(
            self.urls[index],
            self.num_codebooks,
            self.codebook_size,
            references=self.config.references,
            seed=self.config.seed,
            epoch=epoch,
            counts=self.counts,
            dialogues=self.config,
        )
        fraction = self.config.eval_fraction
        if fraction <= 0:
            return samples
        return [s for s in samples if held_out(s.source, fraction) == (self.split == "eval")]


def _counts_text(counts: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no samples at all"


class PackedDataset(IterableDataset):
    """Batches of `micro_batch` packed rows from this rank's streams: one per loader worker (or one in-process).
    `positions` (stream -> position) restart streams; `rotation` says which stream the first batch comes from,
    so that a restarted DataLoader, which starts from its worker 0, continues the round-robin where it was."""

    def __init__(
        self,
        config: DataConfig,
        tokenizer,
        ids: TokenIds,
        num_codebooks: int,
        micro_batch: int,
        rank: int = 0,
        world: int = 1,
        positions: dict[int, dict] | None = None,
        rotation: int = 0,
        split: str = "train",
    ):
        self.config, self.tokenizer, self.ids = config, PieceEncoder(tokenizer), ids
        self.num_codebooks, self.micro_batch = num_codebooks, micro_batch
        self.codebook_size = ids.semantic_end - ids.semantic_begin + 1
        self.rank, self.world = rank, world
        self.per_rank = max(1, config.num_workers)
        self.positions, self.rotation, self.split = positions or {}, rotation, split
        self.urls = shard_urls(config)

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        local = ((info.id if info else 0) + self.rotation) % self.per_rank
        stream_id = self.rank * self.per_rank + local
        stream = Stream(
            self.urls,
            self.config,
            stream_id,
            self.world * self.per_rank,
            self.num_codebooks,
            self.codebook_size,
            self.split,
        )
        seq_len = self.config.seq_len
        rows: list[list[Example]] = []
        row: list[Example] = []
        used = 0
        for sample, position in stream.samples(self.positions.get(local)):
            try:
                ex = build_example(self.tokenizer, self.ids, self.num_codebooks, sample, seq_len)
            except ValueError:  # codes the model's vocabulary cannot hold
                stream.counts["skipped_bad_codes"] += 1
                continue
            if ex is None:
                stream.counts["skipped_too_long"] += 1
                continue
            if row and used + ex.length > seq_len:
                rows.append(row)
                row, used = [], 0
                if len(rows) == self.micro_batch:
                    batch = pack_rows(rows, seq_len, self.num_codebooks, self.ids.pad)
                    batch.stream, batch.position, batch.counts = local, position, dict(stream.counts)
                    yield batch
                    rows = []
            row.append(ex)
            used += ex.length


class Loader:
    """The rank's batches in a fixed order, and its resumable state: each stream's position after the last batch
    taken from it, and which stream comes next."""

    def __init__(
        self,
        config: DataConfig,
        tokenizer,
        ids: TokenIds,
        num_codebooks: int,
        micro_batch: int,
        rank: int = 0,
        world: int = 1,
        state: dict | None = None,
        pin_memory: bool = False,
    ):
        self.per_rank = max(1, config.num_workers)
        self.streams = world * self.per_rank
        if state is not None and state["streams"] != self.streams:
            raise DataError(
                f"the checkpoint's data position has {state['streams']} streams (world size x data.num_workers); this run has {self.streams}"
            )
        self.positions: dict[int, dict] = {int(k): v for k, v in (state or {}).get("positions", {}).items()}
        self.rotation = (state or {}).get("rotation", 0)
        self.counts: dict[int, dict] = {}
        dataset = PackedDataset(
            config, tokenizer, ids, num_codebooks, micro_batch, rank, world, dict(self.positions), self.rotation
        )
        workers = config.num_workers
        self._iter = iter(
            DataLoader(
                dataset,
                batch_size=None,
                num_workers=workers,
                prefetch_factor=4 if workers else None,
                persistent_workers=False,
                pin_memory=pin_memory,
            )
        )
        self.taken = 0

    def __iter__(self) -> Loader:
        return self

    def __next__(self) -> Batch:
        batch = next(self._iter)
        self.positions[batch.stream] = batch.position
        self.counts[batch.stream] = batch.counts
        self.taken += 1
        return batch

    def skipped(self) -> Counter:
        """Samples skipped by reason, over this rank's streams, since this process started."""
        total: Counter = Counter()
        for c in self.counts.values():
            total.update(c)
        return total

    def state_dict(self) -> dict:
        return {
            "streams": self.streams,
            "positions": dict(self.positions),
            "rotation": (self.rotation + self.taken) % self.per_rank,
        }
