"""The separation gate's cost and decisions on a subset of the curation benchmark's corpus, for one code tree or two.

The first --files inputs of the benchmark corpus (scripts/bench_corpus.py, built in bench_out/input) are curated by
the sequential executor (scripts/bench_sequential.py) with transcription off, in a fresh child process per run; the
figures are the process CPU seconds of the separation and quality stages (model loading apart), so a loaded shared
machine shifts them less than wall time would. With --baseline TREE, the same subset is also curated by another
checkout's code (e.g. the main branch), the runs alternating (baseline, this tree, baseline, ...), and the result gives
their CPU ratio and whether both kept and rejected the same segments for the same reasons.

The child is this file run with PYTHONPATH set to the tree under test, so the baseline tree needs no copy of it.
With --profile, this tree's first run is sampled by py-spy (native frames included) into a collapsed-stack file, and
the result gives the share of the separation stage's samples spent in each of PROFILE_PARTS.

Usage:
  .venv/bin/python -m scripts.bench_gate --files 12 --baseline /work/main --repeats 2 --out bench_out/gate.json
  .venv/bin/python -m scripts.bench_gate --files 4 --set separation.model.batch_size=1   # one tree, settings changed
  .venv/bin/python -m scripts.bench_gate --files 12 --profile bench_out/gate_profile.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("separation", "quality")
# where the separation stage's samples fall: a part is a frame (or pair of frames) that some stacks pass through
PROFILE_PARTS = {
    "DNSMOS (gate scores)": ("_gate (curation/stages/separation.py",),
    "DNSMOS networks (ONNX Runtime)": ("DnsmosScorer._run (models/quality/dnsmos.py", "Session.run"),
    "Spleeter": ("vocals (models/separator/base.py",),
    "Spleeter U-Nets": ("SpleeterUNet.forward",),
    "oneDNN primitive creation": ("dnnl_primitive_create",),
    "STFT and inverse STFT": ("stft",),
}


def worker(input_dir: Path, output: Path, overrides: list[str]) -> dict:
    """In the child: curate `input_dir` sequentially; stage CPU seconds and every segment's outcome."""
    import pyarrow.parquet as pq

    from jobs.config import curate_config
    from scripts.bench_sequential import run_sequential

    cfg = curate_config(
        "local",
        direct={"input": str(input_dir), "output": str(output)},
        overrides=["transcription.enabled=false", *overrides],
    )
    result = run_sequential(cfg, torch_threads={s: 1 for s in STAGES})
    outcome, samples = {}, {}
    for r in pq.read_table(output / "manifest.parquet", columns=["key", "sample_json"]).to_pylist():
        separated = (json.loads(r["sample_json"]).get("separation") or {}).get("applied")
        outcome[r["key"]], samples[r["key"]] = "kept, separated" if separated else "kept", r["sample_json"]
    for r in pq.read_table(output / "rejects.parquet").to_pylist():
        if r.get("key"):
            outcome[r["key"]], samples[r["key"]] = f"{r['stage']}/{r['reason']}", r["sample_json"]
    return {
        "cpu_s": {s: result["stages"].get(s, {}).get("cpu_s", 0.0) for s in STAGES},
        "wall_s": {s: result["stages"].get(s, {}).get("wall_s", 0.0) for s in STAGES},
        "audio_in_s": result["stages"].get("separation", {}).get("audio_in_s"),
        "outcome": outcome,
        # every figure written (scores, ratios, lengths): equal digests, equal records
        "samples_sha256": hashlib.sha256(json.dumps(samples, sort_keys=True).encode()).hexdigest(),
    }


def profile_shares(path: Path) -> dict[str, float]:
    """Share of the separation stage's samples in a py-spy collapsed-stack file that fall in each PROFILE_PARTS."""
    stacks = [line.rstrip("\n").rsplit(" ", 1) for line in path.read_text().splitlines()]
    stacks = [(s, int(n)) for s, n in stacks if "process_batch (curation/stages/separation.py" in s]
    total = sum(n for _, n in stacks) or 1

    def within(stack: str, frames: tuple[str, ...]) -> bool:
        if len(frames) == 1:
            return frames[0] in stack
        calls = stack.split(";")
        return any(frames[0] in a and frames[1] in b for a, b in zip(calls, calls[1:]))

    shares = {part: sum(n for s, n in stacks if within(s, frames)) / total for part, frames in PROFILE_PARTS.items()}
    return {"samples": total} | {part: round(v, 4) for part, v in shares.items()}


def run_child(tree: Path, input_dir: Path, overrides: list[str], profile: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(dir=ROOT / "bench_out") as tmp:
        env = os.environ | {"PYTHONPATH": str(tree), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(input_dir), str(Path(tmp) / "out")]
        cmd += [a for o in overrides for a in ("--set", o)]
        if profile is not None:
            spy = Path(sys.executable).with_name("py-spy")  # the dev extra's
            cmd = [str(spy), "record", "--native", "-r", "40", "-f", "raw", "-o", str(profile), "--", *cmd]
        subprocess.run(cmd + ["--result", f"{tmp}/result.json"], cwd=tree, env=env, check=True)
        return json.loads(Path(f"{tmp}/result.json").read_text())


def subset(n: int, hours: float) -> Path:
    """A folder of links to the first `n` inputs of the benchmark corpus (built if needed)."""
    from scripts.bench_corpus import build_set, plan_files

    corpus = ROOT / "bench_out" / "input"
    build_set(corpus, plan_files(hours))
    folder = ROOT / "bench_out" / f"gate_input_{n}"
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in corpus.iterdir() if p.name.startswith("bench_"))[:n]
    for old in folder.iterdir():
        if old.name not in names:
            old.unlink()
    for name in names:
        if not (folder / name).exists():
            (folder / name).symlink_to(corpus / name)
    return folder


def counts(outcome: dict[str, str]) -> dict[str, int]:
    return dict(sorted(Counter(outcome.values()).items()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=12, help="the first N inputs of the corpus (default 12)")
    p.add_argument("--hours", type=float, default=1.0, help="the corpus to take them from (default: make bench's)")
    p.add_argument("--baseline", type=Path, help="another checkout to compare with (e.g. /work/main)")
    p.add_argument("--repeats", type=int, default=1, help="runs per tree, alternating")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE override for this tree's runs")
    p.add_argument("--profile", type=Path, help="sample this tree's first run with py-spy into this file")
    p.add_argument("--out", type=Path, help="results as JSON")
    p.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(*args.worker, args.set)))
        return 0

    input_dir = subset(args.files, args.hours)
    trees = ([("baseline", args.baseline.resolve(), [])] if args.baseline else []) + [("this", ROOT, args.set)]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in trees}
    for k in range(args.repeats):
        for name, tree, overrides in trees:
            r = run_child(tree, input_dir, overrides, args.profile if k == 0 and name == "this" else None)
            runs[name].append(r)
            cpu = sum(r["cpu_s"].values())
            print(f"run {k + 1} {name:8s} separation+quality CPU {cpu:7.1f} s  {counts(r['outcome'])}", flush=True)
    result = {"files": args.files, "load_average": os.getloadavg(), "set": args.set, "trees": {}}
    for name, tree, _ in trees:
        cpus = [sum(r["cpu_s"].values()) for r in runs[name]]
        result["trees"][name] = {
            "root": str(tree),
            "cpu_s": cpus,
            "cpu_s_by_stage": [r["cpu_s"] for r in runs[name]],
            "audio_in_s": runs[name][0]["audio_in_s"],
            "counts": counts(runs[name][0]["outcome"]),
            "same_outcome_every_run": all(r["outcome"] == runs[name][0]["outcome"] for r in runs[name]),
            "samples_sha256": sorted({r["samples_sha256"] for r in runs[name]}),
        }
    if args.profile:
        result["profile"] = profile_shares(args.profile)
        print(json.dumps(result["profile"], indent=1))
    if args.baseline:
        base, this = runs["baseline"][0]["outcome"], runs["this"][0]["outcome"]
        changed = {k: (base.get(k), this.get(k)) for k in base.keys() | this.keys() if base.get(k) != this.get(k)}
        result["same_outcome_as_baseline"] = not changed
        result["same_records_as_baseline"] = runs["baseline"][0]["samples_sha256"] == runs["this"][0]["samples_sha256"]
        result["changed"] = dict(sorted(changed.items()))
        result["cpu_ratio_baseline_over_this"] = round(
            min(result["trees"]["baseline"]["cpu_s"]) / min(result["trees"]["this"]["cpu_s"]), 2
        )
        print(
            f"CPU (best of {args.repeats}) baseline / this: {result['cpu_ratio_baseline_over_this']}x; "
            f"segments with another outcome: {len(changed)}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
