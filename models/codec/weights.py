"""Where a codec checkpoint is and what it holds, checked without torch: the driver runs this before a job starts.

A checkpoint (`ModelSpec.checkpoint`) is a `.pth` file or a folder holding `codec.pth`. Beside the file, a JSON
sidecar of the same stem (`codec.json`) gives the architecture sizes a state dict cannot (heads, windows); without
one, the released S2 codec's sizes apply. Our `save_codec` writes both; the released download has only the `.pth`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from models.checkpoints import CheckpointUnavailableError, check_s3, checkpoint_key, local_path, pass_setting
from models.codec.config import CodecConfig
from schemas.config import ModelSpec

NAME = "s2-codec"
SETTING = "codec.model"  # where a job config holds the codec's ModelSpec
WEIGHTS_FILE = "codec.pth"
RELEASE_REPO = "fishaudio/s2-pro"


class CheckpointMismatchError(CheckpointUnavailableError):
    """The checkpoint was found but does not fit: a broken sidecar, or keys or shapes the architecture lacks."""


def check_name(spec: ModelSpec, setting: str = SETTING) -> None:
    if spec.name != NAME:
        raise ValueError(f"{setting}.name: unknown codec {spec.name!r}; known: {NAME}")


def weights_file(checkpoint: str | None, key: str = f"{SETTING}.checkpoint") -> Path:
    """The `.pth` file a checkpoint setting (`key`: a config path, or a command-line flag such as `--codec`) names;
    CheckpointUnavailableError saying how to get one otherwise."""
    given = pass_setting(key, "DIR")
    how = (
        f"Download the released codec (`huggingface-cli download {RELEASE_REPO} {WEIGHTS_FILE} --local-dir DIR`) or write a "
        f"random tiny one (`s2 codec init --tiny DIR`), and pass it with {given}"
    )
    if not checkpoint:
        raise CheckpointUnavailableError(f"s2 codec: {key} is not set and no codec weights are bundled. {how}.")
    path = local_path(checkpoint)  # an s3:// file or folder is fetched once to this node's cache
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointUnavailableError(f"s2 codec: checkpoint {checkpoint!r} ({key}) has no {path.name}. {how}.")
    return path


def sidecar_file(weights: Path) -> Path:
    return weights.with_suffix(".json")


def read_config(weights: Path) -> tuple[CodecConfig, str]:
    """The architecture of a weights file and where it came from (its sidecar, or the released default)."""
    sidecar = sidecar_file(weights)
    if not sidecar.is_file():
        return CodecConfig(), f"the released S2 config (no {sidecar.name} beside it)"
    try:
        return CodecConfig.from_json(sidecar.read_text()), str(sidecar)
    except ValueError as exc:  # json.JSONDecodeError included
        raise CheckpointMismatchError(f"s2 codec: sidecar {sidecar} is not a codec config: {exc}") from exc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def preflight(spec: ModelSpec, setting: str = SETTING) -> None:
    """Raise CheckpointUnavailableError (naming `setting` and how to provide the weights) unless they are there and
    their sidecar reads; loads nothing."""
    check_name(spec, setting)
    if (spec.checkpoint or "").startswith("s3://"):
        check_s3(spec.checkpoint, "s2 codec", setting)  # its sidecar is read when a node fetches it
    else:
        read_config(weights_file(spec.checkpoint, checkpoint_key(setting)))
