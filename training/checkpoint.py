"""Sharded checkpoints of a training run (torch.distributed.checkpoint, DCP), local or s3://, resumable on another
number of ranks, and complete enough to continue exactly.

    OUT/checkpoints/step-00000500/.metadata, __R_0.distcp   the tensors (DCP): every rank writes its own shards
    OUT/checkpoints/step-00000500/state.pt   the rest, small, written by rank 0 (torch.load(weights_only=True)):
        step, and whatever the trainer adds (each rank's data positions and RNG states, the config, the world)
    OUT/checkpoints/latest                   the name of the newest complete checkpoint, written last

Generic: `tensors` is any nested dict of tensors and DTensors (build it with `sharded_state` from named models and
optimizers; the Dual-AR trainer and the codec trainer alike); DCP reshards on load, so a checkpoint written by N
ranks loads on M, and `load_full` reads it in one process without a process group (`s2 export`).

S3: each rank writes its files to a local staging folder with DCP's file writer, then uploads them through the
project's storage layer (one S3 client, multipart, each object visible only when complete); a load downloads the
folder first. Chosen over fsspec/s3fs so that nothing else opens an S3 client and a slow store never stalls the
collective part of a save: the upload happens after DCP returns, in the background when saving asynchronously.

`latest` is written only after every rank's files and state.pt are in place (a barrier), so a run killed at any
moment leaves the previous checkpoint intact and named. With `async_save`, `save` returns once the shards are
staged to host memory; the write, upload and `latest` happen in a background thread (on a gloo group of their
own), joined by the next `save` or by `wait`.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import storage

CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE = "state.pt"
METADATA = ".metadata"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line naming it."""


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def sharded_state(
    models: dict[str, nn.Module],
    optimizers: dict[str, tuple[nn.Module, torch.optim.Optimizer]] | None = None,
    keep=lambda model, name: True,
) -> dict:
    """{name: model state, "optim.NAME": optimizer state}: each rank's shards (DTensors under FSDP), no copies.
    `keep(model_name, key)` selects the model tensors saved (e.g. only the trainable ones)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    out: dict = {}
    for name, model in models.items():
        out[name] = {k: v for k, v in get_model_state_dict(model).items() if keep(name, k)}
    for name, (model, optimizer) in (optimizers or {}).items():
        out[f"optim.{name}"] = get_optimizer_state_dict(model, optimizer)
    return out


def apply_state(
    state: dict,
    models: dict[str, nn.Module],
    optimizers: dict[str, tuple[nn.Module, torch.optim.Optimizer]] | None = None,
) -> None:
    """Put a `sharded_state` dict filled by `load` back into the models (non-strict: only the saved tensors) and
    optimizers."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    for name, model in models.items():
        set_model_state_dict(model, state[name], options=StateDictOptions(strict=False))
    for name, (model, optimizer) in (optimizers or {}).items():
        set_optimizer_state_dict(model, optimizer, state[f"optim.{name}"])


class Checkpointer:
    """Writes the checkpoints of one run under `out`; every rank calls `save` at the same steps."""

    def __init__(self, out: str, keep: int, *, async_save: bool = False):
        self.out, self.keep, self.async_save = out, keep, async_save
        self.root = storage.join(out, CHECKPOINTS)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        # collectives of a background save must not interleave with the training loop's on the default group
        self.group = dist.new_group(backend="gloo") if async_save and dist.is_initialized() else None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done: str | None = None  # set by the background thread
        self.completed: str | None = None  # URI of the newest checkpoint named by `latest`, as of the last join

    def save(self, step: int, tensors: dict, state: dict) -> None:
        """Write `tensors` (every rank its shards) and `state` (rank 0's; `step` is added) as the checkpoint of
        `step`; name it latest once complete and keep the newest `keep`."""
        self.wait()
        from torch.distributed.checkpoint import FileSystemWriter, async_save, save

        name = step_name(step)
        target = storage.join(self.root, name)
        remote = storage.is_s3(self.out)
        folder = Path(tempfile.mkdtemp(prefix="ckpt-")) if remote else Path(target)
        writer = FileSystemWriter(str(folder), single_file_per_rank=True)
        state = {**state, "step": step}
        if self.async_save:
            future = async_save(tensors, storage_writer=writer, process_group=self.group, no_dist=self.group is None)
            self._thread = threading.Thread(
                target=self._finish_in_background, args=(future, name, folder, state), daemon=True
            )
            self._thread.start()
        else:
            save(tensors, storage_writer=writer, no_dist=not dist.is_initialized())
            self.completed = self._finish(name, folder, state)

    def wait(self) -> None:
        """Block until the pending background save is complete; raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self.completed = self._done or self.completed
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _finish_in_background(self, future, name: str, folder: Path, state: dict) -> None:
        try:
            future.result()
            self._done = self._finish(name, folder, state)
        except BaseException as exc:  # re-raised in the training thread by wait()
            self._error = exc

    def _finish(self, name: str, folder: Path, state: dict) -> str:
        target = storage.join(self.root, name)
        if self.rank == 0:
            torch.save(state, folder / STATE)
        if storage.is_s3(self.out):
            storage.put_dir(str(folder), target)
            shutil.rmtree(folder, ignore_errors=True)
        if dist.is_initialized():
            dist.barrier(group=self.group)
        if self.rank == 0:
            storage.write_text(storage.join(self.root, LATEST), name)
            for old in [n for n in storage.list_names(self.root) if n.startswith("step-")][: -self.keep]:
                if old != name:
                    storage.delete_tree(storage.join(self.root, old))
        return target


def latest(out: str) -> str | None:
    """URI of the newest complete checkpoint under `out`, or None when it has none."""
    pointer = storage.join(out, CHECKPOINTS, LATEST)
    if not storage.exists(pointer):
        return None
    return storage.join(out, CHECKPOINTS, storage.read_text(pointer).strip())


def _unreadable(uri: str, exc: Exception) -> CheckpointError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return CheckpointError(f"checkpoint {uri} is unreadable: {type(exc).__name__}: {detail}")


def read_state(uri: str, required: tuple[str, ...] = ("step",)) -> dict:
    """The small state of the checkpoint at `uri` (its state.pt), checked for the `required` keys."""
    path = storage.join(uri, STATE)
    try:
        with storage.local_copy(path) as local:
            state = torch.load(local, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, truncated or not a checkpoint
        raise _unreadable(path, exc) from None
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: not a checkpoint of this trainer")
    return state


class _LocalFolder:
    """The checkpoint's files in a local folder: the folder itself, or a download of an s3:// one."""

    def __init__(self, uri: str):
        self.uri = uri

    def __enter__(self) -> Path:
        if not storage.is_s3(self.uri):
            return Path(self.uri)
        self.tmp = tempfile.mkdtemp(prefix="ckpt-")
        storage.get_dir(self.uri, self.tmp)
        return Path(self.tmp)

    def __exit__(self, *exc) -> None:
        if storage.is_s3(self.uri):
            shutil.rmtree(self.tmp, ignore_errors=True)


def load(uri: str, tensors: dict) -> None:
    """Fill `tensors` (shaped like what was saved, each rank its own shards) from the checkpoint at `uri`; DCP
    reads whichever saved shards overlap this rank's, so the saving world size does not matter."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint import load as dcp_load

    with _LocalFolder(uri) as folder:
        try:
            dcp_load(tensors, storage_reader=FileSystemReader(str(folder)), no_dist=not dist.is_initialized())
        except Exception as exc:
            raise _unreadable(uri, exc) from None


def load_full(uri: str, prefix: str) -> dict[str, torch.Tensor]:
    """Every saved tensor under `prefix` (e.g. "model." for the tensors of sharded_state's "model"), whole, on the
    CPU, keyed without the prefix: one process, no process group."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint import load as dcp_load
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    with _LocalFolder(uri) as folder:
        try:
            reader = FileSystemReader(str(folder))
            metadata = reader.read_metadata().state_dict_metadata
            tensors = {
                key: torch.empty(m.size, dtype=m.properties.dtype)
                for key, m in metadata.items()
                if key.startswith(prefix) and isinstance(m, TensorStorageMetadata)
            }
            dcp_load(tensors, storage_reader=reader, no_dist=True)
        except Exception as exc:
            raise _unreadable(uri, exc) from None
    return {k[len(prefix) :]: v for k, v in tensors.items()}


# --- whole checkpoints: one torch file written by rank 0 (GRPO's adapters, small enough to gather) ------------


def save(out: str, step: int, state: dict, keep: int) -> str:
    """Write `state` whole as OUT/checkpoints/step-N/state.pt, name it latest, keep the newest `keep`; returns
    its URI. Locally the folder is written under a temporary name and renamed; on S3 the file is one object."""
    root = storage.join(out, CHECKPOINTS)
    name = step_name(step)
    target = storage.join(root, name)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / STATE)
        if storage.is_s3(out):
            storage.put_file(Path(tmp) / STATE, storage.join(target, STATE))
        else:
            partial = Path(root) / f".{name}.partial"
            storage.delete_tree(str(partial))
            partial.mkdir(parents=True)
            shutil.move(Path(tmp) / STATE, partial / STATE)
            storage.delete_tree(target)
            partial.rename(target)
    storage.write_text(storage.join(root, LATEST), name)
    for old in [n for n in storage.list_names(root) if n.startswith("step-")][:-keep]:
        storage.delete_tree(storage.join(root, old))
    return target


def load_latest(out: str) -> tuple[str, dict] | None:
    """(URI, state) of the newest whole checkpoint under `out`, or None when it has none."""
    uri = latest(out)
    if uri is None:
        return None
    return storage.join(uri, STATE), read_state(uri, ("step", "model", "optimizer", "rng", "config"))
