"""`s2 train` (one process) and `python -m jobs.train` (Ray Train, the entrypoint for `ray job submit`).

  s2 train --config train.yaml [--set runtime.max_steps=200 ...]
  python -m jobs.train --config train.yaml [--workers N] [--set ...]

The YAML holds any TrainConfig fields (schemas/training.py; jobs/configs/train_demo.yaml is a tiny example);
`--set key.path=value` edits one field, parsed by its type. A run continues from the newest checkpoint in
runtime.out when there is one. Under Ray, `--workers` (default ray.workers) processes train together, with one
GPU each when ray.use_gpu is true.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.config import ConfigFileError, add_overrides, entrypoint, one_line, read_yaml, subcommand
from schemas.config import layered
from schemas.training import TrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="training YAML (TrainConfig fields)")
    add_overrides(p, "runtime.max_steps=100")


def build_config(args: argparse.Namespace) -> TrainConfig:
    overrides = list(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides.append(f"ray.workers={args.workers}")
    return layered(TrainConfig, read_yaml(args.config), overrides=overrides)


def model_start_errors() -> tuple[type[Exception], ...]:
    """Problems of a Dual-AR run's data, checkpoints, config or tokenizer, found before or while it starts (training
    and GRPO alike): said in one line."""
    from models.checkpoints import CheckpointUnavailableError
    from models.dual_ar.config import ConfigError
    from models.dual_ar.tokens import TokenizerError
    from models.dual_ar.weights import CheckpointFormatError
    from training.checkpoint import CheckpointError
    from training.data import DataError

    return (DataError, CheckpointError, CheckpointUnavailableError, ConfigError, TokenizerError, CheckpointFormatError)


def _start_errors() -> tuple[type[Exception], ...]:
    from training.trainer import TrainError

    return (TrainError, *model_start_errors())


def _config(args: argparse.Namespace) -> TrainConfig | None:
    try:
        return build_config(args)
    except (ValueError, ConfigFileError) as exc:
        print(f"configuration error: {one_line(exc)}", file=sys.stderr)
        return None


def _ready(config: TrainConfig) -> int | None:
    """The exit code when the run cannot start (a start-up check failed), after saying why in one line; None when it
    can. Says so when the model is tiny and random. Writes nothing."""
    from jobs import startup

    try:
        if config.model.init == "s2":
            startup.check_model_folder("model.path", config.model.path)
        startup.check_tokenized(
            "data.index" if config.data.index else "data.shards", config.data.index, config.data.shards
        )
    except startup.StartupError as exc:
        print(f"cannot train: {exc}", file=sys.stderr)
        return 2
    if config.model.init == "tiny":
        print(startup.random_model_note("model", "model.init", config.model.tiny.model_dump()), file=sys.stderr)
    return None


def run(args: argparse.Namespace) -> int:
    """One process: `s2 train`."""
    config = _config(args)
    if config is None:
        return 2
    if (code := _ready(config)) is not None:
        return code
    from training.trainer import train

    try:
        summary = train(config)
    except _start_errors() as exc:
        print(f"cannot train: {exc}", file=sys.stderr)
        return 2
    if not summary["metrics"]:  # no step ran: the newest checkpoint had reached runtime.max_steps
        from jobs.startup import nothing_to_do

        print(nothing_to_do(config.runtime.out, "runtime.max_steps", config.runtime.max_steps), file=sys.stderr)
        return 0
    print(json.dumps({"out": summary["out"], "model": summary["model"], "last": summary["metrics"]}, indent=1))
    return 0


def run_ray(args: argparse.Namespace) -> int:
    """Under Ray Train: `python -m jobs.train`."""
    config = _config(args)
    if config is None:
        return 2
    if (code := _ready(config)) is not None:
        return code
    from pipelines.train import run_ray_training

    failure = run_ray_training(config)
    if failure is not None:
        print(f"training failed: {failure}", file=sys.stderr)
        return 1
    import storage
    from training.trainer import METRICS, MODEL_DIR

    lines = storage.read_bytes(storage.join(config.runtime.out, METRICS)).decode().splitlines()
    summary = {"out": config.runtime.out, "model": storage.join(config.runtime.out, MODEL_DIR)}
    print(json.dumps({**summary, "last": json.loads(lines[-1]) if lines else None}, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(sub, "train", "train the Dual-AR model on tokenized shards (one process)", __doc__, add_arguments, run)


def main(argv: list[str] | None = None) -> int:
    def arguments(p: argparse.ArgumentParser) -> None:
        add_arguments(p)
        p.add_argument("--workers", type=int, help="training workers (default: ray.workers)")

    return entrypoint("python -m jobs.train", __doc__, arguments, run_ray, argv)


if __name__ == "__main__":
    sys.exit(main())
