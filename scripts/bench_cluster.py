"""Curation on a real two-node Ray cluster on this machine: the head offers no CPU to tasks, so decoding, the model
actors and the unit writers all run on the worker node; the driver only plans, checks and receives per-unit
summaries. Measures the driver's peak RSS at 1x and `--scale`x input, checks where the writers ran, and compares the
shards with those of the same input curated without Ray (the sequential executor, which writes what a one-node Ray
run writes: tests/pipelines/test_curate_local_profile.py), byte for byte.

    .venv/bin/python -m scripts.bench_cluster --out bench_out/cluster.json              # local profile, 8 and 32 inputs
    .venv/bin/python -m scripts.bench_cluster --inputs 4 --scale 4 --set separation.enabled=false ...

Each run is a child process (one cluster, one driver): `ray.cluster_utils.Cluster` starts a head node with 0 CPUs
and a worker node with `--worker-cpus`, the driver connects with `ray.address`, and the child reports its own peak
RSS (getrusage: the driver process alone, not the Ray daemons) and the nodes its writers ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jobs.config import add_overrides

ROOT = Path(__file__).resolve().parent.parent
CLIPS = sorted((ROOT / "examples" / "audio").glob("*.wav")) + sorted((ROOT / "tests" / "data" / "speech").glob("*.wav"))


def make_inputs(folder: Path, n: int) -> Path:
    """n inputs made of the repository's clips (copies under distinct names: distinct keys, same audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clip = CLIPS[i % len(CLIPS)]
        shutil.copy(clip, folder / f"{i:04d}_{clip.name}")
    return folder


def shard_digests(output: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((output / "shards").glob("*.tar"))}


def child(args: argparse.Namespace) -> int:
    """One run, driven from this process, on a fresh two-node cluster (or without Ray: --sequential)."""
    from curation.executor import SequentialExecutor
    from curation.run import curate
    from jobs.config import curate_config
    from pipelines.curate import RayExecutor
    from pipelines.ray_env import ensure_ray

    direct = {"input": args.input, "output": args.output}
    if args.sequential:
        curate(curate_config("local", direct=direct, overrides=args.overrides), SequentialExecutor())
        Path(args.result).write_text(json.dumps({"shards": shard_digests(Path(args.output))}))
        return 0
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=args.worker_cpus)
    direct["ray"] = {"address": cluster.address}
    try:
        cfg = curate_config("local", direct=direct, overrides=args.overrides)
        import ray

        ensure_ray(cfg.ray.address, cfg.ray.num_cpus, cfg.ray.object_store_mb)
        nodes = {n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]}
        executor = RayExecutor(cfg)
        t0 = time.time()
        summary = curate(cfg, executor)
        result = {
            "wall_s": round(time.time() - t0, 1),
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "nodes_cpus": nodes,
            "writer_nodes": executor.writer_nodes,
            "summary": {k: summary[k] for k in ("inputs", "segments_kept", "segments_rejected", "shards", "hours_in")},
            "shards": shard_digests(Path(args.output)),
        }
        ray.shutdown()
    finally:
        cluster.shutdown()
    Path(args.result).write_text(json.dumps(result))
    return 0


def run(
    input_dir: Path, output: Path, work: Path, overrides: list[str], worker_cpus: int, sequential: bool = False
) -> dict:
    """One child run; returns its result."""
    if output.exists():
        shutil.rmtree(output)
    result = work / f"{output.name}.json"
    cmd = [sys.executable, "-m", "scripts.bench_cluster", "--child", "--input", str(input_dir), "--output", str(output)]
    cmd += ["--result", str(result), "--worker-cpus", str(worker_cpus), *sum((["--set", o] for o in overrides), [])]
    if sequential:
        cmd.append("--sequential")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # never a cluster named in the environment
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def measure(work: Path, inputs: int, scale: int, overrides: list[str], worker_cpus: int = 2) -> dict:
    small = make_inputs(work / "in_small", inputs)
    large = make_inputs(work / "in_large", inputs * scale)
    runs = {
        "cluster_1x": run(small, work / "out_cluster_1x", work, overrides, worker_cpus),
        f"cluster_{scale}x": run(large, work / f"out_cluster_{scale}x", work, overrides, worker_cpus),
        f"sequential_{scale}x": run(large, work / f"out_sequential_{scale}x", work, overrides, worker_cpus, True),
    }
    big = runs[f"cluster_{scale}x"]
    head = [node for node, cpus in big["nodes_cpus"].items() if cpus == 0]
    return {
        "inputs": [inputs, inputs * scale],
        "runs": runs,
        "driver_peak_rss_mb": [runs["cluster_1x"]["driver_peak_rss_mb"], big["driver_peak_rss_mb"]],
        "writers_off_the_head": all(n not in head for r in runs.values() if "cluster" in r for n in r["writer_nodes"]),
        "cluster_equals_sequential": big["shards"] == runs[f"sequential_{scale}x"]["shards"] and bool(big["shards"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out/cluster.json")
    p.add_argument("--work-dir", default="bench_out/cluster_runs")
    p.add_argument("--inputs", type=int, default=8, help="inputs at 1x")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--worker-cpus", type=int, default=2)
    add_overrides(p)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    work = Path(args.work_dir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    fig = measure(work, args.inputs, args.scale, args.overrides, args.worker_cpus)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(fig, indent=1))
    a, b = fig["driver_peak_rss_mb"]
    print(f"driver peak RSS: {a:.0f} MB at {fig['inputs'][0]} inputs, {b:.0f} MB at {fig['inputs'][1]} inputs")
    print(
        f"writers off the head node: {fig['writers_off_the_head']}; 2-node shards == shards without Ray: {fig['cluster_equals_sequential']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
