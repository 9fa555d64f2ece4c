"""Quality-threshold calibration: score labelled clean and degraded audio with a profile's quality model and see, for
every minimum on every dimension, what it keeps of the good audio and rejects of the bad.

  s2 calibrate-quality --clean DIR [--noise DIR] --out DIR [--profile local|s2] [--config job.yaml] [--set k=v ...]
      bootstrap labels (curation/evaluation/degrade.py): every clean clip and --per-clip degraded copies of it; a
      clip is good when its `overall` label is at least --good-above
  s2 calibrate-quality --labels table.jsonl --out DIR ...
      a user's labels: a table (.jsonl/.parquet/.csv) with `uri` (relative to the table's folder or absolute) and
      `good` (0/1), or an `overall` column judged against --good-above

Writes DIR/calibration.md (the trade-off per threshold as a table), DIR/calibration.csv, DIR/calibration.png (the
curves, with the profile's minimums and the recommended ones) and DIR/calibration.json (every clip's scores, the
profile's rule evaluated as a whole, the recommendation: per dimension the lowest minimum rejecting --target-reject
of the bad clips). Clips are scored on their first --crop-s seconds (0: whole).

`python -m jobs.calibrate_quality ...` runs it directly.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from jobs.config import add_overrides, entrypoint, subcommand


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clean", help="folder of clean speech (searched recursively): bootstrap labels")
    src.add_argument("--labels", help="a user's label table: uri + good (0/1) or overall")
    p.add_argument("--noise", help="folder of noise recordings for the bootstrap's noise degradation")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--profile", default=None, help="curation profile whose quality model is calibrated (default local)")
    p.add_argument("--config", default=None, help="job YAML (as for s2 curate)")
    add_overrides(p, "quality.model.options.head=h/")
    p.add_argument("--per-clip", type=int, default=4, help="degraded copies per clean clip")
    p.add_argument("--max-kinds", type=int, default=2, help="at most this many degradations chained per copy")
    p.add_argument("--good-above", type=float, default=3.5, help="an overall label at least this is good")
    p.add_argument("--target-reject", type=float, default=0.8, help="share of bad clips a recommended minimum rejects")
    p.add_argument("--crop-s", type=float, default=6.0, help="score the first seconds of each clip (0: whole)")
    p.add_argument("--seed", type=int, default=0)


def _labelled(args: argparse.Namespace, sample_rate: int):
    from curation.evaluation.calibration import Labelled, bootstrap_labelled
    from jobs.train_quality_head import _audio_files, _decode, _decode_all, read_table

    if args.clean:
        files = _audio_files(args.clean)
        if not files:
            raise ValueError(f"--clean: no audio files in {args.clean}")
        root = Path(args.clean)
        clean = {
            str(p.relative_to(root).with_suffix("")).replace("/", "__"): x
            for p, x in _decode_all(files, sample_rate).items()
        }
        noises = list(_decode_all(_audio_files(args.noise), sample_rate).values()) if args.noise else []
        return bootstrap_labelled(clean, sample_rate, noises, args.per_clip, args.max_kinds, args.seed, args.good_above)
    table = read_table(args.labels)
    if "uri" not in table.columns or not ({"good", "overall"} & set(table.columns)):
        raise ValueError(f"--labels: {args.labels} needs a 'uri' column and a 'good' or 'overall' column")
    base = Path(args.labels).resolve().parent
    out = []
    for _, row in table.iterrows():
        path = Path(row["uri"]) if Path(row["uri"]).is_absolute() else base / row["uri"]
        label = float(row["overall"]) if "overall" in table.columns else None
        good = bool(row["good"]) if "good" in table.columns else label >= args.good_above
        out.append(Labelled(str(row["uri"]), _decode(path, sample_rate), good, label, ""))
    return out


def run(args: argparse.Namespace) -> int:
    from curation.evaluation.calibration import (
        evaluate_rule,
        markdown_table,
        plot_tradeoff,
        recommend,
        recommend_rule,
        sweep,
    )
    from jobs.config import ConfigFileError, curate_config, one_line
    from models import registry
    from models.checkpoints import CheckpointUnavailableError

    try:
        cfg = curate_config(args.profile, args.config, {"input": ".", "output": args.out}, args.overrides)
        spec = cfg.quality.model
        registry.preflight("quality", spec, "quality.model")
        sample_rate = 16000
        clips = _labelled(args, sample_rate)
        if not clips or all(c.good for c in clips) or not any(c.good for c in clips):
            raise ValueError("the labelled set needs both good and bad clips")
    except (ValueError, OSError, ConfigFileError, CheckpointUnavailableError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    scorer = registry.build("quality", spec, "quality.model")
    crop = int(args.crop_s * sample_rate) if args.crop_s > 0 else None
    results = []
    for c in clips:
        (q,) = scorer.score([c.audio[:crop]], sample_rate)
        results.append(q.dimensions())
    dims = [d for d in scorer.dimensions if all(d in r for r in results)]
    scores = {d: np.array([r[d] for r in results]) for d in dims}
    good = np.array([c.good for c in clips])
    rows = sweep(scores, good)
    chosen = recommend(rows, args.target_reject)
    current = {d: t for d, t in cfg.quality.thresholds.items() if d in scores}
    rule = evaluate_rule(scores, good, current)
    joint = recommend_rule(scores, good, args.target_reject)
    marks = {(d, r["threshold"]): f"lowest rejecting >= {args.target_reject:.0%} of bad" for d, r in chosen.items()}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = (
        f"Quality calibration of {scorer.model_id} ({cfg.profile} profile) on {len(clips)} clips: {int(good.sum())} good, "
        f"{int((~good).sum())} bad ({'bootstrap: overall label >= ' + str(args.good_above) if args.clean else args.labels}).\n\n"
        f"The profile's minimums together ({', '.join(f'{d} {t:g}' for d, t in current.items()) or 'none'}): "
        f"{rule['good_kept']:.1%} of good kept, {rule['bad_rejected']:.1%} of bad rejected.\n\n"
        + (
            f"Recommended rule (most good kept while rejecting >= {args.target_reject:.0%} of bad): "
            f"{', '.join(f'{d} {t:.2f}' for d, t in joint['thresholds'].items())}: {joint['good_kept']:.1%} of good "
            f"kept, {joint['bad_rejected']:.1%} of bad rejected.\n\n"
            if joint
            else f"No set of minimums rejects {args.target_reject:.0%} of the bad clips.\n\n"
        )
    )
    (out / "calibration.md").write_text(head + markdown_table(rows, marks))
    with open(out / "calibration.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "calibration.png").write_bytes(plot_tradeoff(rows, current, chosen))
    record = {
        "model_id": scorer.model_id,
        "profile": cfg.profile,
        "good_above": args.good_above,
        "target_reject": args.target_reject,
        "profile_rule": rule,
        "recommended": {d: r["threshold"] for d, r in chosen.items()},
        "recommended_rule": joint,
        "clips": [
            {"name": c.name, "good": c.good, "label": c.label, "degradations": c.degradations, **r}
            for c, r in zip(clips, results)
        ],
    }
    (out / "calibration.json").write_text(json.dumps(record, indent=1))
    print(head.strip())
    for d, r in chosen.items():
        print(
            f"recommended {d} >= {r['threshold']:.2f}: {r['good_kept']:.1%} of good kept, {r['bad_rejected']:.1%} of bad rejected"
        )
    print(f"wrote {out / 'calibration.md'}, calibration.csv, calibration.png, calibration.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(
        sub,
        "calibrate-quality",
        "kept/rejected trade-off of quality minimums on labelled clean and degraded audio",
        __doc__,
        add_arguments,
        run,
    )


def main(argv: list[str] | None = None) -> int:
    return entrypoint("python -m jobs.calibrate_quality", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
