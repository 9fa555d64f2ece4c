"""Tiny things for the training tests: tokenized shards as the curation pipeline writes them (KEY.flac, KEY.json
with the Sample record, KEY.codes.npy) built from schemas.sample records and seeded random codes, and a training
config of a one-layer model over 4 codebooks of 16 codes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from schemas.config import layered
from schemas.sample import AudioFacts, Sample, SourceRef
from schemas.training import TrainConfig
from schemas.transcript import RichTranscript

N, CODES = 4, 16

WORDS = "the quick brown fox jumps over a lazy dog while seven birds sing".split()


def sample_record(key: str, uri: str, text: str, speaker: str | None = None) -> Sample:
    return Sample(
        key=key,
        source=SourceRef(
            uri=uri,
            start_s=0.0,
            end_s=1.0,
            audio=AudioFacts(sample_rate=16000, channels=1, duration_s=1.0),
            speaker=speaker,
        ),
        audio=AudioFacts(sample_rate=16000, channels=1, duration_s=1.0, format="FLAC"),
        transcript=RichTranscript.from_inline(text, model_id="test"),
    )


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def npy(codes: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, codes)
    return buf.getvalue()


def make_samples(
    n: int,
    *,
    seed: int = 0,
    sources: int = 2,
    frames: tuple[int, int] = (4, 12),
    num_codebooks: int = N,
    codebook_size: int = CODES,
    speaker: bool = False,
) -> list[tuple[Sample, np.ndarray | None]]:
    """n (record, codes) pairs over `sources` source files, keys sorted within each source."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        src = i % sources
        uri = f"/in/source{src}.wav"
        key = f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}_{i:05d}"
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        text = f"<|speaker:0|>{words}" + (" [laugh]" if i % 3 == 0 else "")
        record = sample_record(key, uri, text, f"spk{src}" if speaker else None)
        codes = rng.integers(0, codebook_size, size=(num_codebooks, int(rng.integers(*frames))), dtype=np.int16)
        out.append((record, codes))
    return out


def write_shards(folder: Path, samples: list[tuple[Sample, np.ndarray | None]], per_shard: int) -> Path:
    """Shards of `per_shard` samples (tar members sorted by key) under folder/shards, and folder/index.json."""
    (folder / "shards").mkdir(parents=True, exist_ok=True)
    entries = []
    for s, start in enumerate(range(0, len(samples), per_shard)):
        members = []
        for record, codes in sorted(samples[start : start + per_shard], key=lambda rc: rc[0].key):
            members.append((f"{record.key}.flac", b"fLaC not decoded by the trainer"))
            members.append((f"{record.key}.json", record.model_dump_json(exclude_none=True).encode()))
            if codes is not None:
                members.append((f"{record.key}.codes.npy", npy(codes)))
        members.sort(key=lambda m: m[0])
        name = f"shards/shard-{s:06d}-000.tar"
        (folder / name).write_bytes(_tar(members))
        entries.append({"url": name, "nsamples": len(samples[start : start + per_shard])})
    index = folder / "index.json"
    index.write_text(json.dumps({"__kind__": "wids-shard-index-v1", "shardlist": entries}))
    return index


def tiny_config(index: Path | str, out: Path | str, *overrides: str) -> TrainConfig:
    """A few steps of a one-layer tiny model on `index`, float32 on one thread, checkpoints every 2 steps."""
    base = {
        "data": {"index": str(index), "seq_len": 160, "shuffle_buffer": 4, "num_workers": 0},
        "model": {"tiny": {"dim": 32, "n_layer": 1, "num_codebooks": N, "codebook_size": CODES}},
        "optimizer": {"lr_text": 3e-3, "lr_audio": 3e-3, "warmup_steps": 2, "stable_steps": 100, "decay_steps": 2},
        "runtime": {
            "dtype": "float32",
            "max_steps": 4,
            "log_every": 1,
            "ckpt_every": 2,
            "out": str(out),
            "cpu_threads": 1,
        },
    }
    return layered(TrainConfig, base, overrides=list(overrides))
