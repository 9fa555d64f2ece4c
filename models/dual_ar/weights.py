"""Is a Dual-AR checkpoint folder complete? Answered without torch, so a driver can check before a run starts.

A released S2 folder holds config.json (`fish_qwen3_omni`), the weights as `model.safetensors.index.json` plus the
shards it names (or one `model.safetensors`), and the tokenizer (tokenizer.json, tokenizer_config.json).
"""

from __future__ import annotations

import json
from pathlib import Path

from models.checkpoints import CheckpointUnavailableError, check_s3, checkpoint_key, local_path, pass_setting
from schemas.config import ModelSpec

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


class CheckpointFormatError(ValueError):
    """Weights that do not fit the model (missing, unexpected or mis-shaped keys); the message is one line."""


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder, in the order of their names."""
    index = folder / INDEX
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    if (folder / SINGLE).is_file():
        return [folder / SINGLE]
    return []


def checkpoint_dir(spec: ModelSpec, setting: str = "model") -> Path:
    """The local folder of spec.checkpoint (a path, or a hub id already in the Hugging Face cache), checked for
    the files a load needs; CheckpointUnavailableError (one line naming `setting`.checkpoint, or `setting` itself when
    it is the raising command's flag, e.g. `--model`) otherwise."""
    setting = checkpoint_key(setting)
    if not spec.checkpoint:
        raise CheckpointUnavailableError(
            f"Dual-AR model: no checkpoint given; pass a released S2 folder (config.json, safetensors, tokenizer) "
            f"with {pass_setting(setting, 'DIR')}"
        )
    folder = local_path(spec.checkpoint)  # an s3:// folder is fetched once to this node's cache
    if not folder.exists():
        folder = _from_hf_cache(spec.checkpoint) or folder
    if not folder.is_dir():
        raise CheckpointUnavailableError(
            f"Dual-AR model: {setting} {spec.checkpoint!r} is not a folder (nor a hub id in the local cache)"
        )
    absent = [name for name in ("config.json", "tokenizer.json") if not (folder / name).is_file()]
    files = weight_files(folder)
    if not files:
        absent.append(f"{INDEX} or {SINGLE}")
    absent += [f.name for f in files if not f.is_file()]
    if absent:
        raise CheckpointUnavailableError(f"Dual-AR model: {setting} {str(folder)!r} lacks {', '.join(absent)}")
    return folder


def _from_hf_cache(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not in the cache, or not a valid id
        return None


def preflight(spec: ModelSpec, setting: str = "model") -> None:
    """Raise CheckpointUnavailableError unless the checkpoint folder is complete; loads nothing."""
    if (spec.checkpoint or "").startswith("s3://"):
        check_s3(spec.checkpoint, "Dual-AR model", setting)
    else:
        checkpoint_dir(spec, setting)
