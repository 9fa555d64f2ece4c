"""Start-up checks and notes that `s2 train` and `s2 grpo` share: shards that hold codes, a model folder that is
there, and one line saying when a model has random weights. Each check runs before anything is written, and names
the remedy as the raising command takes it."""

from __future__ import annotations

import tarfile

from schemas.training import DataConfig

CODES_MEMBER = "codes.npy"
S2_PRO_DOWNLOAD = "`huggingface-cli download fishaudio/s2-pro --local-dir DIR`"


class StartupError(ValueError):
    """The run cannot start as configured; the message is one line naming the setting and the remedy."""


def _first_sample_has_codes(url: str) -> bool | None:
    """Whether the first sample of a shard holds KEY.codes.npy (its members are adjacent); None when the shard
    cannot be read (the loader's own checks then name the problem). Streams a few members, not the shard."""
    import storage

    try:
        with storage.open_read(url) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            first = None
            for member in tar:
                key, _, ext = member.name.partition(".")
                if first is not None and key != first:
                    return False
                first = key
                if ext == CODES_MEMBER:
                    return True
            return None if first is None else False
    except (OSError, tarfile.TarError):
        return None
    except Exception as exc:  # botocore's errors for an s3:// shard: the loader reports them
        if type(exc).__module__.startswith("botocore"):
            return None
        raise


def check_tokenized(setting: str, index: str | None, shards: list[str]) -> None:
    """StartupError naming `s2 tokenize` when the data's first shard was curated without codes."""
    from training.data import DataError, shard_urls

    try:
        urls = shard_urls(DataConfig(index=index, shards=shards))
    except DataError:
        return  # the run's own start says what is wrong with the index
    if _first_sample_has_codes(urls[0]) is False:
        where = index if index is not None else urls[0]
        folder = index.rsplit("/", 1)[0] if index and "/" in index else "CURATED"
        raise StartupError(
            f"{setting}: {urls[0]} holds no KEY.codes.npy (curated without the codec). Add codes with `s2 tokenize "
            f"--input {folder} --output TOKENIZED --codec CODEC` (CODEC: S2-Pro's codec.pth) and pass "
            f"`--set {setting.split('.')[0]}.index=TOKENIZED/index.json` instead of {where}"
        )


def check_model_folder(setting: str, path: str) -> None:
    """StartupError when a released-format checkpoint named by a local path is not a folder."""
    from pathlib import Path

    if path.startswith("s3://") or Path(path).expanduser().is_dir():
        return
    raise StartupError(
        f"{setting} {path!r} is not a folder: pass a released-format folder with `--set {setting}=DIR`, S2-Pro "
        f"({S2_PRO_DOWNLOAD}) or a training run's model/"
    )


def random_model_note(what: str, setting: str, tiny: dict) -> str:
    """The one line saying that a model is tiny and random (the schema's training default)."""
    sizes = ", ".join(f"{k} {v}" for k, v in tiny.items())
    return (
        f"note: {setting} is 'tiny': the {what} is a tiny random-init Dual-AR model ({sizes}), not a trained one; "
        f"start from S2-Pro with `--set {setting}=s2 --set {setting.rsplit('.', 1)[0]}.path=DIR`"
    )


def nothing_to_do(out: str, setting: str, steps: int) -> str:
    """What a rerun of a finished run says (it trained no step): the step its newest checkpoint holds and how to go
    on, read from the checkpoint pointer."""
    import storage
    from training.checkpoint import CHECKPOINTS, LATEST

    pointer = storage.join(out, CHECKPOINTS, LATEST)
    name = storage.read_bytes(pointer).decode().strip() if storage.exists(pointer) else ""
    step = int(name.removeprefix("step-")) if name.removeprefix("step-").isdigit() else steps
    return (
        f"nothing to do: {out} holds the checkpoint of step {step}, and {setting} is {steps}. To continue, run it again "
        f"with `--set {setting}={step + steps}` (any number above {step}); to start afresh, `--set runtime.out=NEW` "
        f"or `--set runtime.resume=false`"
    )


def random_codec_note(checkpoint: str, setting: str) -> str | None:
    """The one line saying that a local codec checkpoint has random weights (its sidecar says so: `s2 codec init`);
    None for a trained one, or one on S3 (read when a node fetches it)."""
    from models.checkpoints import checkpoint_key
    from models.codec import weights

    if checkpoint.startswith("s3://"):
        return None
    config, _ = weights.read_config(weights.weights_file(checkpoint, checkpoint_key(setting)))
    if not config.random_init:
        return None
    return (
        f"note: the codec ({checkpoint}) has random-init weights (`s2 codec init`): its codes and audio stand for "
        "noise, fit for tests and demos only"
    )
