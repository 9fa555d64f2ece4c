"""The `s2` command."""

from __future__ import annotations

import argparse
import json
import sys

SCHEMAS = {
    "sample": ("schemas.sample", "Sample"),
    "reject": ("schemas.sample", "Reject"),  # its RejectReason enum lists every reason with its meaning
    "config": ("schemas.config", "CurateConfig"),
    "quality": ("schemas.quality", "QualityScores"),
    "transcript": ("schemas.transcript", "RichTranscript"),
    "rewards-config": ("schemas.rewards", "RewardsConfig"),
    "rewards-request": ("schemas.rewards", "ScoreRequest"),
    "rewards-response": ("schemas.rewards", "ScoreResponse"),
    "train-config": ("schemas.training", "TrainConfig"),
    "grpo-config": ("schemas.grpo", "GRPOConfig"),
    "codec-train-config": ("schemas.codec_training", "CodecTrainConfig"),
}


def _schema(args: argparse.Namespace) -> int:
    import importlib

    module, name = SCHEMAS[args.name]
    print(json.dumps(getattr(importlib.import_module(module), name).model_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jobs import (
        calibrate_quality,
        codec,
        curate,
        export,
        grpo,
        serve_rewards,
        speak,
        tokenize,
        train,
        train_quality_head,
    )

    parser = argparse.ArgumentParser(prog="s2", description="Speech-data curation for S2-style TTS.")
    sub = parser.add_subparsers(dest="command", required=True)
    curate.register(sub)
    p = sub.add_parser("schema", help="print the JSON Schema of a record")
    p.add_argument("name", choices=sorted(SCHEMAS))
    p.set_defaults(func=_schema)
    train_quality_head.register(sub)
    calibrate_quality.register(sub)
    speak.register(sub)
    codec.register(sub)
    serve_rewards.register(sub)
    train.register(sub)
    export.register(sub)
    tokenize.register(sub)
    grpo.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
