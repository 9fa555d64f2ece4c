"""`s2 export`: a training checkpoint (sharded, written by any number of ranks) in the released S2 format, LoRA
merged, for `s2 speak`.

  s2 export --checkpoint OUT/checkpoints/step-00000500 --out DIR
  s2 export --checkpoint OUT --out DIR       # a run folder: its latest checkpoint

Offline: one process, no process group, no GPU. Local paths or s3://. Weights the run did not train (a LoRA run's
base model) are read again from its model.init source, as its config names it.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.config import entrypoint, subcommand


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder, or a run folder (its latest checkpoint)")
    p.add_argument("--out", required=True, help="folder for the released-format model (local or s3://)")


def run(args: argparse.Namespace) -> int:
    from jobs.train import model_start_errors
    from training import checkpoint
    from training.trainer import export_checkpoint

    uri = checkpoint.latest(args.checkpoint) or args.checkpoint
    try:
        export_checkpoint(uri, args.out)
    except model_start_errors() as exc:
        print(f"cannot export: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"checkpoint": uri, "model": args.out}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(sub, "export", "a training checkpoint in the released format (LoRA merged)", __doc__, add_arguments, run)


def main(argv: list[str] | None = None) -> int:
    return entrypoint("python -m jobs.export", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
