"""Checkpoints of a training run, local or s3://, atomic, and complete enough to continue exactly.

    OUT/checkpoints/step-00000500/trainer.pt    one torch file (torch.load(weights_only=True) reads it):
        step, model (the trainable parameters, full, by name), optimizer (full state by parameter name),
        data (each rank's stream positions), rng (each rank's torch, CUDA, Python and NumPy generator states),
        config (the run's TrainConfig as a dict), world (ranks x loader workers)
    OUT/checkpoints/latest                      the name of the newest complete checkpoint, written last

A checkpoint is written whole under a temporary name and renamed (locally) or uploaded as one object (S3) before
`latest` names it, so a run killed at any moment leaves the previous checkpoint intact and named.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

import storage

CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE = "trainer.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line naming it."""


def _name(step: int) -> str:
    return f"step-{step:08d}"


def save(out: str, step: int, state: dict, keep: int) -> str:
    """Write `state` as the checkpoint of `step`, name it latest, keep the newest `keep`; returns its URI."""
    root = storage.join(out, CHECKPOINTS)
    name = _name(step)
    target = storage.join(root, name)
    if storage.is_s3(out):
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / STATE
            torch.save(state, local)
            storage.put_file(local, storage.join(target, STATE))
    else:
        partial = Path(root) / f".{name}.partial"
        storage.delete_tree(str(partial))
        partial.mkdir(parents=True)
        torch.save(state, partial / STATE)
        storage.delete_tree(target)
        partial.rename(target)
    storage.write_bytes(storage.join(root, LATEST), name.encode())
    for old in [n for n in storage.list_names(root) if n.startswith("step-")][:-keep]:
        storage.delete_tree(storage.join(root, old))
    return target


def load_latest(out: str) -> tuple[str, dict] | None:
    """(URI, state) of the newest checkpoint under `out`, or None when it has none."""
    root = storage.join(out, CHECKPOINTS)
    pointer = storage.join(root, LATEST)
    if not storage.exists(pointer):
        return None
    name = storage.read_bytes(pointer).decode().strip()
    uri = storage.join(root, name, STATE)
    try:
        if storage.is_s3(uri):
            with tempfile.TemporaryDirectory() as tmp:
                storage.get_file(uri, Path(tmp) / STATE)
                state = torch.load(Path(tmp) / STATE, map_location="cpu", weights_only=True)
        else:
            state = torch.load(uri, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # missing, truncated or not a checkpoint
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"checkpoint {uri} (named by {pointer}) is unreadable: {type(exc).__name__}: {detail}"
        ) from None
    missing = [k for k in ("step", "model", "optimizer", "data", "rng", "config", "world") if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {uri} lacks {', '.join(missing)}: not a checkpoint of this trainer")
    return uri, state
