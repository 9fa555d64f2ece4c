"""`s2 codec train` (one process) and `python -m jobs.codec_train` (Ray Train, the entrypoint for `ray job submit`).

  s2 codec train --config codec.yaml [--init CODEC.pth] [--set runtime.max_steps=200 ...]
  python -m jobs.codec_train --config codec.yaml [--workers N] [--init CODEC.pth] [--set ...]

The YAML holds any CodecTrainConfig fields (schemas/codec_training.py; jobs/configs/codec_demo.yaml is a tiny
example); `--set key.path=value` edits one field. `--init` is codec.init: a released-format codec.pth (or its folder),
loaded strictly and fine-tuned; add `--set codec.train=decoder` to train the decoder only. A run continues from the
newest checkpoint in runtime.out when there is one. The trained codec is runtime.out/codec/codec.pth (+ codec.json),
in the released format: `s2 tokenize --set codec.model.checkpoint=OUT/codec` and the reference load it.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.config import ConfigFileError, add_overrides, entrypoint, one_line, read_yaml
from schemas.codec_training import CodecTrainConfig
from schemas.config import layered


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="codec training YAML (CodecTrainConfig fields)")
    p.add_argument("--init", help="released-format codec.pth (or its folder) to fine-tune: codec.init")
    add_overrides(p, "runtime.max_steps=100")


def build_config(args: argparse.Namespace) -> CodecTrainConfig:
    overrides = list(args.overrides)
    if getattr(args, "init", None):
        overrides.append(f"codec.init={args.init}")
    if getattr(args, "workers", None) is not None:
        overrides.append(f"ray.workers={args.workers}")
    return layered(CodecTrainConfig, read_yaml(args.config), overrides=overrides)


def _config(args: argparse.Namespace) -> CodecTrainConfig | None:
    try:
        return build_config(args)
    except (ValueError, ConfigFileError) as exc:
        print(f"configuration error: {one_line(exc)}", file=sys.stderr)
        return None


def start_errors() -> tuple[type[Exception], ...]:
    """Problems of a codec run's data, checkpoints, teacher or config, found before or while it starts."""
    from models.checkpoints import CheckpointUnavailableError
    from training.checkpoint import CheckpointError
    from training.codec.data import CodecDataError
    from training.codec.loop import CodecTrainError
    from training.codec.teacher import TeacherError

    return (CodecTrainError, CodecDataError, CheckpointError, CheckpointUnavailableError, TeacherError)


def _print_summary(out: str, codec: str, last: dict | None, evaluation: dict | None) -> None:
    print(json.dumps({"out": out, "codec": codec, "last": last, "eval": evaluation}, indent=1))


def run(args: argparse.Namespace) -> int:
    """One process: `s2 codec train`."""
    config = _config(args)
    if config is None:
        return 2
    from training.codec.loop import train

    try:
        summary = train(config)
    except start_errors() as exc:
        print(f"cannot train the codec: {exc}", file=sys.stderr)
        return 2
    _print_summary(summary["out"], summary["codec"], summary["metrics"], summary["eval"])
    return 0


def run_ray(args: argparse.Namespace) -> int:
    """Under Ray Train: `python -m jobs.codec_train`."""
    config = _config(args)
    if config is None:
        return 2
    from pipelines.codec_train import run_ray_codec_training

    failure = run_ray_codec_training(config)
    if failure is not None:
        print(f"codec training failed: {failure}", file=sys.stderr)
        return 1
    import storage
    from training.codec.loop import CODEC_DIR, EVAL_SUMMARY
    from training.trainer import METRICS

    out = config.runtime.out
    lines = storage.read_bytes(storage.join(out, METRICS)).decode().splitlines()
    summary_uri = storage.join(out, EVAL_SUMMARY)
    evaluation = json.loads(storage.read_bytes(summary_uri)) if storage.exists(summary_uri) else None
    last = json.loads(lines[-1]) if lines else None
    _print_summary(out, storage.join(out, CODEC_DIR, "codec.pth"), last, evaluation)
    return 0


def main(argv: list[str] | None = None) -> int:
    def arguments(p: argparse.ArgumentParser) -> None:
        add_arguments(p)
        p.add_argument("--workers", type=int, help="training workers (default: ray.workers)")

    return entrypoint("python -m jobs.codec_train", __doc__, arguments, run_ray, argv)


if __name__ == "__main__":
    sys.exit(main())
