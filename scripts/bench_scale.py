"""Curation at scale: a manifest of 1,000, 10,000 and 100,000 tiny synthetic inputs (short tones; decode and VAD only)
on a two-node `ray.cluster_utils.Cluster` (a head offering no CPU to tasks, a worker node with `--worker-cpus`), the
output on S3 (a moto server on 127.0.0.1). Per point: the driver's peak RSS, the wall time, the time to the first
completed unit and the finalize time, in bench_out/scale.json (`points`, merged with the points already there, so the
largest can run later on its own).

    .venv/bin/python -m scripts.bench_scale                       # 1k, 10k and 100k (`make bench-scale`)
    .venv/bin/python -m scripts.bench_scale --points 1000 10000   # the two small points only

The inputs are hard links to 16 tone files (distinct paths, so distinct keys; one tone per frequency), listed in a
JSONL manifest. Each point runs in a child process (one cluster, one driver) that reports its own peak RSS (VmHWM:
the driver alone, not the Ray daemons nor the S3 server, which runs in this process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from jobs.config import add_overrides

ROOT = Path(__file__).resolve().parent.parent
RATE = 8000
TONES = 16
# decode and VAD only; silero gives a pure tone a speech probability of about 0.03-0.07 per frame, so a low threshold
# makes each tone one kept segment (the shards, index and manifest have rows to hold)
SPINE = [
    "separation.enabled=false",
    "quality.enabled=false",
    "transcription.enabled=false",
    "segmentation.threshold=0.02",
    "ray.fuse_stages.batch_size=32",  # rows per model-actor call: one tiny input is too little work per call
]
SECONDS = 1.5


def make_manifest(folder: Path, n: int) -> Path:
    """A JSONL manifest of `n` inputs: SECONDS tones at 8 kHz (one of TONES frequencies), each input its own hard link."""
    tones = folder / f"tones_{SECONDS:g}s"
    tones.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SECONDS * RATE)) / RATE
    for k in range(TONES):
        path = tones / f"tone{k:02d}.wav"
        if not path.exists():
            sf.write(path, (0.3 * np.sin(2 * np.pi * (220 + 40 * k) * t)).astype(np.float32), RATE, subtype="PCM_16")
    links = folder / f"in_{n}_{SECONDS:g}s"
    if not links.exists():
        tmp = folder / f"in_{n}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for i in range(n):
            sub = tmp / f"{i // 1000:04d}"
            if i % 1000 == 0:
                sub.mkdir(parents=True)
            os.link(tones / f"tone{i % TONES:02d}.wav", sub / f"{i:06d}.wav")
        tmp.rename(links)
    manifest = folder / f"manifest_{n}_{SECONDS:g}s.jsonl"
    if not manifest.exists():
        with open(manifest, "w") as f:
            for i in range(n):
                f.write(json.dumps({"uri": str(links / f"{i // 1000:04d}" / f"{i:06d}.wav")}) + "\n")
    return manifest


def peak_rss_mb() -> float:
    """This process's peak RSS since it started its program. Not getrusage's ru_maxrss: Linux carries that over from
    the forking parent through exec, so a child of this script (whose S3 server holds the last point's objects) would
    report the parent's size."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def child(args: argparse.Namespace) -> int:
    """One point, driven from this process, on a fresh two-node cluster."""
    from ray.cluster_utils import Cluster

    from curation.run import curate
    from jobs.config import curate_config
    from pipelines.curate import RayExecutor

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=args.worker_cpus)
    try:
        direct = {"input": args.input, "output": args.output, "ray": {"address": cluster.address}}
        cfg = curate_config("local", direct=direct, overrides=SPINE + args.overrides)
        first: list[float] = []
        t0 = time.time()
        executor = RayExecutor(cfg)
        summary = curate(cfg, executor, on_unit=lambda s: first or first.append(time.time()))
        Path(args.result).with_suffix(".stats.txt").write_text(executor.dataset.stats())
        result = {
            "inputs": summary["inputs"],
            "driver_peak_rss_mb": round(peak_rss_mb(), 1),
            "wall_s": round(time.time() - t0, 1),
            "finalize_s": summary["finalize_s"],
            "time_to_first_unit_s": round(first[0] - t0, 1) if first else None,
            "units": -(-summary["inputs"] // cfg.shards.inputs_per_unit),
            "segments_kept": summary["segments_kept"],
            "segments_rejected": summary["segments_rejected"],
            "shards": summary["shards"],
        }
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    Path(args.result).write_text(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out/scale.json")
    p.add_argument("--work-dir", default="bench_out/scale_runs")
    p.add_argument("--points", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--worker-cpus", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5400, help="seconds a point may take before it is stopped")
    add_overrides(p)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)

    import logging

    from moto.server import ThreadedMotoServer

    import storage

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # never a cluster named in the environment
    env.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
    )
    os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
    out_path = Path(args.out)
    report = json.loads(out_path.read_text()) if out_path.exists() else {"points": []}
    try:
        for n in args.points:
            manifest = make_manifest(work, n)
            bucket = f"scale-{n}-{int(time.time())}"
            storage.s3_client().create_bucket(Bucket=bucket)
            result = work / f"result_{n}.json"
            result.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "scripts.bench_scale", "--child", "--input", str(manifest)]
            cmd += ["--output", f"s3://{bucket}/out", "--result", str(result), "--worker-cpus", str(args.worker_cpus)]
            cmd += sum((["--set", o] for o in args.overrides), [])
            subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, timeout=args.timeout)
            point = json.loads(result.read_text())
            print(json.dumps(point), flush=True)
            report["points"] = sorted(
                [q for q in report["points"] if q["inputs"] != n] + [point], key=lambda q: q["inputs"]
            )
            storage.delete_tree(f"s3://{bucket}/out")  # the server holds objects in this process's memory
    finally:
        server.stop()
    report.update(
        machine=f"{os.cpu_count()} cores, shared with other work (load average {os.getloadavg()[0]:.1f} at the end)",
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        setup="2-node ray.cluster_utils.Cluster (head 0 CPU, worker --worker-cpus), moto S3 output on 127.0.0.1, "
        f"{SECONDS:g} s 8 kHz tones, decode + silero VAD ({', '.join(SPINE)}), local profile otherwise",
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
