"""`s2 curate` and `python -m jobs.curate`: one curation job (the entrypoint for `ray job submit`)."""

from __future__ import annotations

import argparse
import json
import sys

from jobs.config import ConfigFileError, add_overrides, curate_config, entrypoint, one_line, subcommand
from schemas.config import CurateConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="directory, s3:// prefix, or .jsonl/.parquet manifest (uri[,text,speaker,language])")
    p.add_argument("--output", help="directory or s3:// prefix")
    p.add_argument("--profile", help="models to run: local (offline CPU, default) or s2 (the report's models)")
    p.add_argument("--config", help="job YAML (any CurateConfig fields), applied over the profile")
    add_overrides(p, "quality.thresholds.overall=3.0")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def build_config(args: argparse.Namespace) -> CurateConfig:
    """defaults <- profile <- --config <- --input/--output <- --set."""
    direct = {k: v for k, v in (("input", args.input), ("output", args.output)) if v}
    return curate_config(args.profile, args.config, direct, args.overrides)


def format_summary(s: dict) -> str:
    lines = [
        f"inputs            {s['inputs']}  (with samples {s['inputs_with_samples']}, fully rejected {s['inputs_rejected']})",
        f"segments kept     {s['segments_kept']}  in {s['shards']} shards  (segments rejected {s['segments_rejected']})",
        f"hours in / out    {s['hours_in']:.3f} / {s['hours_out']:.3f}",
        f"wall time         {s['wall_s']:.1f} s  ({s['audio_hours_per_hour']} audio-hours per hour)"
        + ("  [resumed]" if s.get("resumed") else ""),
    ]
    if s["rejects_by_reason"]:
        lines.append("rejects by reason " + ", ".join(f"{k}={v}" for k, v in s["rejects_by_reason"].items()))
    lines.append(f"output            {s['output']}  (index.json, manifest.parquet, rejects.parquet, shards/)")
    lines.append(f"report            {s['report']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from curation.io.ingest import IngestError
    from curation.io.plan import PlanMismatchError
    from curation.stages.decode import InputNotOnNodeError
    from curation.stages.failure import StageFailure
    from curation.stages.pipeline import StartupError
    from models.checkpoints import CheckpointUnavailableError
    from pipelines.cluster_checks import OutputNotSharedError
    from pipelines.cluster_fit import ResourceConfigError
    from pipelines.curate import run_curation

    try:
        cfg = build_config(args)
    except (ValueError, ConfigFileError) as exc:
        print(f"configuration error: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        summary = run_curation(cfg, progress=args.progress)
    except (
        CheckpointUnavailableError,
        IngestError,
        OutputNotSharedError,
        PlanMismatchError,
        ResourceConfigError,
        StartupError,
    ) as exc:
        # problems of the job as a whole, found before any work: one clear line, no traceback
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    except InputNotOnNodeError as exc:  # found by a worker: completed units stand, the rest needs shared inputs
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except StageFailure as exc:  # a broken model or environment: completed units stand, no failed unit is recorded
        print(f"run stopped: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(sub, "curate", "curate audio into WebDataset shards", __doc__, add_arguments, run)


def main(argv: list[str] | None = None) -> int:
    return entrypoint("python -m jobs.curate", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
