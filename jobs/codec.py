"""`s2 codec ...` and `python -m jobs.codec ...`: make, train and evaluate S2 codec checkpoints.

  s2 codec init --tiny OUT_DIR     a tiny codec with random weights (the released structure at a few channels),
                                   for tests and demos; written through the same save path as any checkpoint
  s2 codec init OUT_DIR            the released full-size architecture with random weights (1.6 GB), e.g. for
                                   throughput measurements
  s2 codec train --config YAML     train or fine-tune a codec (jobs.codec_train; `python -m jobs.codec_train` on Ray)
  s2 codec eval --codec CKPT --input SHARDS_OR_DIR [--out REPORT_DIR]
                                   reconstruct audio (curated shards, an index.json or folders of audio files) and
                                   report mel distance, STOI, wideband PESQ, SI-SDR and per-codebook usage

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

    from jobs import codec_train

    train = sub.add_parser(
        "train",
        help="train or fine-tune a codec (one process)",
        description=codec_train.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    codec_train.add_arguments(train)
    train.set_defaults(func=codec_train.run)

    evaluate = sub.add_parser(
        "eval",
        help="reconstruction quality of a codec on audio",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--codec", required=True, help="codec.pth or its folder (local or s3://)")
    evaluate.add_argument(
        "--input", required=True, nargs="+", help="tar shards, an index.json or folders of audio files"
    )
    evaluate.add_argument("--out", help="folder for eval.json and the reconstructions (WAV); default: print only")
    evaluate.add_argument("--max-seconds", type=float, default=10.0, help="each clip's first seconds (default 10)")
    evaluate.set_defaults(func=run_eval)


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


def run_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import soundfile

    from models.checkpoints import CheckpointUnavailableError
    from models.codec.checkpoint import load_codec
    from models.codec.weights import weights_file
    from training.codec.data import CodecDataError, read_clips
    from training.codec.evaluate import CodecEvaluator, table, wav_name

    try:
        model = load_codec(weights_file(args.codec, "--codec"))
        rate = model.config.sample_rate
        clips = read_clips(args.input, rate)
    except (CheckpointUnavailableError, CodecDataError) as exc:
        print(f"cannot evaluate: {exc}", file=sys.stderr)
        return 2
    audio = [np.array(clips.clip(i)[: int(args.max_seconds * rate)]) for i in range(len(clips.keys))]
    summary, rows, outputs = CodecEvaluator(rate).evaluate(model, audio)
    print(table({"codec": summary}))
    report = {
        "codec": args.codec,
        "input": args.input,
        "summary": summary,
        "clips": [{"key": k, **r} for k, r in zip(clips.keys, rows)],
        "skipped": dict(clips.skipped),
    }
    if args.out:
        out = Path(args.out)
        for i, (key, reconstruction) in enumerate(zip(clips.keys, outputs)):
            path = out / "wav" / wav_name(i, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, np.clip(reconstruction, -1, 1), rate, subtype="PCM_16")
        (out / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out / 'eval.json'} and {len(outputs)} reconstructions under {out / 'wav'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codec",
        help="S2 codec checkpoints (init), training (train) and evaluation (eval)",
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
