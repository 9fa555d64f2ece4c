"""Quality-head workflow: bootstrap labels from clean speech, then train the w2v-BERT quality head.

  s2 bootstrap-quality-labels --clean DIR --noise DIR --out DIR [--per-clip 4] [--seed 0]
      writes DIR/audio/*.wav (each clean clip + degraded copies) and DIR/labels.jsonl
      (uri, one column per quality dimension, degradations applied); see curation/evaluation/degrade.py for the labels.

  s2 train-quality-head --data labels.jsonl --backbone facebook/w2v-bert-2.0 --out head/ [--epochs 30]
      --data: .jsonl / .parquet / .csv with a `uri` column (relative to the table's folder or absolute), one
      numeric column per quality dimension to learn, optional `good` (0/1); writes head/quality_head.pt,
      which the scorer loads with `--set quality.model.name=w2vbert --set quality.model.options.head=head/`.

`python -m jobs.train_quality_head ...` runs train-quality-head directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


def _audio_files(folder: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{folder}: not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


def _decode(path: Path | str, sample_rate: int) -> np.ndarray:
    from curation.io.audio import decode_file

    return decode_file(str(path), sample_rate).audio


def _decode_all(paths: list[Path], sample_rate: int) -> dict[Path, np.ndarray]:
    """Decoded audio by path; unreadable files are reported and left out."""
    out = {}
    for p in paths:
        try:
            out[p] = _decode(p, sample_rate)
        except Exception as exc:
            print(f"skipping {p}: {exc}", file=sys.stderr)
    return out


def read_table(path: str):
    import pandas as pd

    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"--data: {path!r} must be .jsonl, .parquet or .csv")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True, help="label table (.jsonl/.parquet/.csv): uri + one column per dimension (+ good)"
    )
    p.add_argument("--backbone", default="facebook/w2v-bert-2.0", help="hub id or local folder of the w2v-BERT model")
    p.add_argument("--out", required=True, help="head checkpoint: a folder (gets quality_head.pt) or a .pt file")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hidden", type=int, default=256, help="MLP hidden width")
    p.add_argument(
        "--unfreeze-top", type=int, default=0, help="also train the top N encoder layers (0 = frozen backbone)"
    )
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="good/bad boundary of a dimension (default: its median)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="autocast dtype on GPU"
    )


def add_bootstrap_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clean", required=True, help="folder of clean speech (searched recursively)")
    p.add_argument("--noise", required=True, help="folder of noise recordings")
    p.add_argument("--out", required=True, help="output folder: audio/*.wav and labels.jsonl")
    p.add_argument("--per-clip", type=int, default=4, help="degraded copies per clean clip")
    p.add_argument("--max-kinds", type=int, default=2, help="at most this many degradations chained per copy")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)


def _train(
    args: argparse.Namespace, waveforms: list, sample_rate: int, rows, dims: list[str], thresholds: dict[str, float]
):
    from models.quality.training import train_quality_head

    return train_quality_head(
        waveforms,
        sample_rate,
        {d: rows[d].astype(float).tolist() for d in dims},
        backbone=args.backbone,
        out=args.out,
        good=rows["good"].astype(float).to_numpy() if "good" in rows.columns else None,
        thresholds=thresholds,
        hidden=args.hidden,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        unfreeze_top=args.unfreeze_top,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
    )


def run(args: argparse.Namespace) -> int:
    from models.checkpoints import CheckpointUnavailableError
    from schemas.quality import QUALITY_DIMENSIONS

    try:
        table = read_table(args.data)
        if "uri" not in table.columns:
            raise ValueError(f"--data: {args.data} has no 'uri' column")
        dims = [d for d in QUALITY_DIMENSIONS if d in table.columns]
        if not dims:
            raise ValueError(f"--data: no label column; expected some of {', '.join(QUALITY_DIMENSIONS)}")
        thresholds = {}
        for item in args.threshold:
            dim, _, value = item.partition("=")
            if dim not in dims:
                raise ValueError(f"--threshold {item!r}: {dim!r} is not a label column ({', '.join(dims)})")
            thresholds[dim] = float(value)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = Path(args.data).resolve().parent
    sample_rate = 16000
    waveforms, kept, skipped = [], [], 0
    for row, uri in enumerate(table["uri"]):
        path = Path(uri) if Path(uri).is_absolute() else base / uri
        try:
            waveforms.append(_decode(path, sample_rate))
            kept.append(row)
        except Exception as exc:  # one unreadable file should not stop a long training run
            skipped += 1
            print(f"skipping {uri}: {exc}", file=sys.stderr)
    rows = table.iloc[kept]
    try:
        result = _train(args, waveforms, sample_rate, rows, dims, thresholds)
    except (ValueError, CheckpointUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {
        "checkpoint": str(result.checkpoint),
        "dims": result.dims,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "skipped": skipped,
        "initial_val_loss": result.initial_val_loss,
        "best_epoch": result.best_epoch,
        "best_val_loss": min(result.val_loss) if result.val_loss else None,
        "final_train_loss": result.train_loss[-1],
    }
    print(json.dumps(summary, indent=2))
    return 0


def run_bootstrap(args: argparse.Namespace) -> int:
    import soundfile as sf

    from curation.evaluation.degrade import bootstrap

    try:
        clean_files, noise_files = _audio_files(args.clean), _audio_files(args.noise)
        if not clean_files:
            raise ValueError(f"--clean: no audio files in {args.clean}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sr = args.sample_rate
    root = Path(args.clean)
    clean = {
        str(p.relative_to(root).with_suffix("")).replace("/", "__"): x for p, x in _decode_all(clean_files, sr).items()
    }
    noises = list(_decode_all(noise_files, sr).values())
    if not clean:
        print(f"error: --clean: no readable audio in {args.clean}", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    records = []
    for name, item in bootstrap(clean, sr, noises, per_clip=args.per_clip, max_kinds=args.max_kinds, seed=args.seed):
        rel = f"audio/{name}.wav"
        sf.write(out / rel, item.audio, sr, subtype="PCM_16")
        degradations = [{"kind": a.kind, **a.params, "severity": round(a.severity, 4)} for a in item.applied]
        records.append({"uri": rel, **{k: round(v, 4) for k, v in item.labels.items()}, "degradations": degradations})
    tmp = out / "labels.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    tmp.replace(out / "labels.jsonl")
    print(f"wrote {len(records)} clips ({len(clean)} clean x {1 + args.per_clip}) and {out / 'labels.jsonl'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-quality-head", help="train the w2v-BERT quality head on a label table", description=__doc__
    )
    add_train_arguments(p)
    p.set_defaults(func=run)
    b = sub.add_parser(
        "bootstrap-quality-labels", help="degrade clean speech into a labelled training set", description=__doc__
    )
    add_bootstrap_arguments(b)
    b.set_defaults(func=run_bootstrap)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.train_quality_head", description=__doc__)
    add_train_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
