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


# The command that reads each configuration schema, named in its YAML template.
CONFIG_COMMANDS = {
    "config": "s2 curate --config FILE",
    "rewards-config": "s2 serve-rewards --config FILE",
    "train-config": "s2 train --config FILE",
    "grpo-config": "s2 grpo --config FILE",
}


def _schema(args: argparse.Namespace) -> int:
    import importlib

    module, name = SCHEMAS[args.name]
    cls = getattr(importlib.import_module(module), name)
    if args.yaml:
        from jobs.template import config_template

        if args.name not in CONFIG_COMMANDS:
            print(f"error: --yaml is for configurations: {', '.join(CONFIG_COMMANDS)}", file=sys.stderr)
            return 2
        print(config_template(cls, CONFIG_COMMANDS[args.name]), end="")
        return 0
    print(json.dumps(cls.model_json_schema(), indent=2))
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
    p = sub.add_parser("schema", help="print the JSON Schema of a record, or a configuration's commented YAML")
    p.add_argument("name", choices=sorted(SCHEMAS))
    p.add_argument(
        "--yaml",
        action="store_true",
        help=f"a commented YAML of every field and default, to start a config from ({', '.join(CONFIG_COMMANDS)})",
    )
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
