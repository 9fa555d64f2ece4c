"""`s2 tokenize` and `python -m jobs.tokenize`: S2 codes for shards curated without them.

  s2 tokenize --input CURATED --output OUT --codec PATH [--set codec.model.batch_size=64 ...]

CURATED is a curation output (a folder or s3:// prefix with index.json); PATH a codec.pth or a folder holding one
(local, shared or s3://). OUT gets shards of the same names holding the input members byte for byte plus
KEY.codes.npy, with index.json, manifest.parquet and rejects.parquet. Killed, it resumes where it stopped when run
again with the same command.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.config import add_overrides, entrypoint, one_line, subcommand
from schemas.config import TokenizeConfig, layered


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="curation output: folder or s3:// prefix holding index.json")
    p.add_argument("--output", required=True, help="folder or s3:// prefix for the tokenized shards")
    p.add_argument("--codec", required=True, help="codec.pth, or a folder holding one (local, shared or s3://)")
    add_overrides(p, "codec.model.device=cuda")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)


def run(args: argparse.Namespace) -> int:
    from curation.io.tokenized import TokenizePlanError
    from models.checkpoints import CheckpointUnavailableError
    from pipelines.tokenize import run_tokenize

    try:
        layer = {
            "input": args.input,
            "output": args.output,
            "codec": {"model": {"name": "s2-codec", "checkpoint": args.codec}},
        }
        cfg = layered(TokenizeConfig, layer, overrides=args.overrides)
    except ValueError as exc:
        print(f"configuration error: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        # checked here, so that a missing codec is named by this command's own flag (run_tokenize checks it again)
        from jobs.startup import random_codec_note
        from models.codec import weights

        weights.preflight(cfg.codec.model, "--codec")
        if note := random_codec_note(cfg.codec.model.checkpoint, "--codec"):
            print(note, file=sys.stderr)
        summary = run_tokenize(cfg, progress=args.progress)
    except (CheckpointUnavailableError, TokenizePlanError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(sub, "tokenize", "add S2 codec codes to curated shards", __doc__, add_arguments, run)


def main(argv: list[str] | None = None) -> int:
    return entrypoint("python -m jobs.tokenize", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
