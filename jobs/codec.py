"""`s2 codec ...` and `python -m jobs.codec ...`: make S2 codec checkpoints.

  s2 codec init --tiny OUT_DIR     a tiny codec with random weights (the released structure at a few channels),
                                   for tests and demos; written through the same save path as any checkpoint
  s2 codec init OUT_DIR            the released full-size architecture with random weights (1.6 GB), e.g. for
                                   throughput measurements

Weights drawn at random say so: the sidecar's `random_init`, a warning on every load, "random-init" in model_id.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="codec_command", required=True)
    init = sub.add_parser(
        "init",
        help="write a codec checkpoint with random weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("out_dir", help="folder to write codec.pth and codec.json into")
    init.add_argument("--tiny", action="store_true", help="a few channels wide instead of the released size")
    init.add_argument("--seed", type=int, default=0, help="the same seed gives the same weights")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    import os

    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        print(f"error: out_dir {args.out_dir} is a file; name a folder for codec.pth and codec.json", file=sys.stderr)
        return 2
    from models.codec.checkpoint import random_codec, save_codec
    from models.codec.config import CodecConfig

    model = random_codec(CodecConfig.tiny() if args.tiny else CodecConfig(), seed=args.seed)
    weights = save_codec(model, args.out_dir)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {weights} and {weights.with_suffix('.json').name}: {'tiny' if args.tiny else 'full-size'} codec, random-init weights, {params:,} parameters"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codec",
        help="S2 codec checkpoints (init)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.codec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
