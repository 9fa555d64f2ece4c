"""Reward throughput, `local` profile on CPU: scored audio-seconds per second for each reward, in-process and over HTTP.

    .venv/bin/python -m scripts.bench_rewards --out bench_out/rewards.json        # `make bench-rewards`

Items: the repository's English speech clips whose transcripts are known (tests/data/speech, 1.5-11.7 s, 16 and
22.05 kHz), each with its transcript as the target and a CMU ARCTIC clip as the reference voice. For each reward
(stt, quality, similarity, total):

  in-process      build_reward(kind, cfg).score on batches of --batch items, in this process (the RL loop's way)
  one at a time   over HTTP, one client sending one item per request and waiting for each answer
  concurrent      over HTTP, --clients clients each sending one item per request, all at once; measured twice:
                  replicas scoring one item per model call (service.max_batch_size=1) and batching the items of
                  concurrent requests (the configured @serve.batch size), with the mean batch the replicas ran

Each mode reports scored audio-seconds per wall second and per CPU second: the CPU of this process (the reward
in-process, the client threads over HTTP) and of every process it started (Ray's daemons, Serve's proxy and
controller, the replicas). On a machine shared with other jobs the wall figures move with their load, the CPU
figures much less. Each HTTP mode sends the items --rounds times. The services run on a local Ray with --cores
CPUs, deployed as `s2 serve-rewards --profile local` deploys them; the client is models.rewards.client.RewardClient.
Model loading, Ray and Serve start-up are excluded; every mode is warmed up with one request first. The speed-up is
concurrent batched over one at a time, and batched over unbatched (what batching adds to concurrency alone).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

import numpy as np
import requests

from jobs.config import add_overrides
from scripts.bench_curation import _psutil, machine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
KINDS = ("stt", "quality", "similarity", "total")
ARCTIC = {
    "aew_a0001": "Author of the danger trail, Philip Steels, etc.",
    "axb_a0004": "Lord, but I'm glad to see you again, Phil.",
}
MODES = ("one at a time", "concurrent, unbatched", "concurrent, batched")


def corpus() -> list:
    """RewardItems: every speech clip with a known transcript; the reference voice is a CMU ARCTIC clip."""
    import soundfile as sf

    from models.rewards import RewardItem

    texts = {f"pyroomacoustics__cmu_arctic_us_{k}": v for k, v in ARCTIC.items()}
    with open(DATA / "MANIFEST.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["transcript"] and row["lang"] == "en" and row["n_speakers"] == "1":
                texts[Path(row["path"]).stem] = row["transcript"]
    reference = sf.read(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0002.wav", dtype="float32")[0]
    items = []
    for path in sorted((DATA / "speech").iterdir()):
        if path.stem in texts:
            x, rate = sf.read(path, dtype="float32", always_2d=True)
            items.append(RewardItem(x.mean(axis=1), rate, texts[path.stem], reference=reference, reference_rate=16000))
    return items


def seconds(items) -> float:
    return sum(len(it.audio) / it.sample_rate for it in items)


def tree_cpu() -> float:
    """CPU seconds so far of this process and of every descendant alive now (a local Ray is a child of its driver)."""
    psutil = _psutil()
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # ended since listed
            pass
    return total


def _timed(items, run) -> tuple[list, dict]:
    t, cpu = time.perf_counter(), tree_cpu()
    results = run()
    wall, cpu = time.perf_counter() - t, tree_cpu() - cpu
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    audio = seconds(items)
    return results, {"audio_s_per_s": audio / wall, "audio_s_per_cpu_s": audio / cpu, "wall_s": wall, "cpu_s": cpu}


def in_process(cfg, items, batch: int) -> dict:
    from models.rewards import Wrappers, build_reward

    wrappers = Wrappers(cfg)
    out = {}
    for kind in KINDS:
        reward = build_reward(kind, cfg, wrappers)
        reward.score(items[:1])  # warm-up
        results, out[kind] = _timed(
            items,
            lambda reward=reward: [r for k in range(0, len(items), batch) for r in reward.score(items[k : k + batch])],
        )
        out[kind]["mean_score"] = float(np.mean([r.score for r in results]))
        _print("in-process", kind, out[kind])
    return out


def _stats(url: str, token: str) -> dict:
    return requests.get(f"{url}/v1/stats", headers={"Authorization": f"Bearer {token}"}, timeout=60).json()


def over_http(url: str, token: str, kind: str, items, clients: int) -> dict:
    """Every item its own request, from `clients` threads, each with its own client."""
    from models.rewards.client import RewardClient

    pool = [RewardClient(url, kind, token=token, timeout_s=600) for _ in range(clients)]
    pool[0].score(items[:1])  # warm-up
    before = _stats(url, token)[kind]
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        _, row = _timed(
            items, lambda: list(ex.map(lambda k: pool[k % clients].score([items[k]])[0], range(len(items))))
        )
    after = _stats(url, token)[kind]
    for c in pool:
        c.close()
    ran = {int(size): n - before.get(size, 0) for size, n in after.items() if n > before.get(size, 0)}
    return row | {
        "requests": len(items),
        "batches": ran,
        "mean_batch": sum(s * n for s, n in ran.items()) / max(1, sum(ran.values())),
    }


def _print(mode: str, kind: str, row: dict) -> None:
    batch = f"   mean batch {row['mean_batch']:.2f}" if "mean_batch" in row else ""
    print(
        f"{mode:<22} {kind:<11} {row['audio_s_per_s']:7.1f} audio-s/s {row['audio_s_per_cpu_s']:7.1f} per CPU-s{batch}",
        flush=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out/rewards.json", help="results as JSON")
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    p.add_argument("--rounds", type=int, default=3, help="times each HTTP mode sends the items")
    p.add_argument("--batch", type=int, default=8, help="items per in-process call")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    add_overrides(p)
    args = p.parse_args(argv)

    import torch

    from jobs.serve_rewards import rewards_config

    torch.set_num_threads(1)  # as a replica with one CPU or less runs
    cfg = rewards_config("local", overrides=args.overrides)
    items = corpus()
    info = machine()
    print(
        f"{len(items)} items, {seconds(items):.1f} s of audio; {info['nproc']} cores ({info['cpu']}), load {info['load_average_at_start'][0]:.1f}",
        flush=True,
    )
    result = {
        "machine": info,
        "items": len(items),
        "audio_s": seconds(items),
        "clients": args.clients,
        "rounds": args.rounds,
        "service": cfg.service.model_dump(),
        "in_process": in_process(cfg, items, args.batch),
        "http": {},
    }

    from ray import serve

    from pipelines.ray_env import ensure_ray
    from pipelines.serve_rewards import start

    ensure_ray(num_cpus=args.cores)
    token, port = secrets.token_urlsafe(16), _free_port()
    unbatched = cfg.model_copy(update={"service": cfg.service.model_copy(update={"max_batch_size": 1})})
    try:
        for mode, mode_cfg, clients in zip(MODES, (cfg, unbatched, cfg), (1, args.clients, args.clients)):
            url = start(mode_cfg, token, "127.0.0.1", port)
            result["http"][mode] = {}
            for kind in KINDS:
                result["http"][mode][kind] = over_http(url, token, kind, items * args.rounds, clients)
                _print(mode, kind, result["http"][mode][kind])
    finally:
        serve.shutdown()
    http = result["http"]
    result["speedup"] = {
        kind: {
            unit: {
                "batched_over_one_at_a_time": http[MODES[2]][kind][unit] / http[MODES[0]][kind][unit],
                "batched_over_unbatched": http[MODES[2]][kind][unit] / http[MODES[1]][kind][unit],
            }
            for unit in ("audio_s_per_s", "audio_s_per_cpu_s")
        }
        for kind in KINDS
    }
    result["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(
        f"\nscored audio-seconds per second (per CPU-second); {args.clients} clients, max batch {cfg.service.max_batch_size}, {args.cores} cores"
    )
    print(
        f"{'reward':<12}{'in-process':>16}{'one at a time':>16}{'unbatched':>16}{'batched':>16}{'mean batch':>12}{'speed-up':>10}{'vs unbatched':>14}"
    )
    for kind in KINDS:
        rows = [result["in_process"][kind]] + [http[m][kind] for m in MODES]
        cells = "".join(f"{r['audio_s_per_s']:.1f} ({r['audio_s_per_cpu_s']:.1f})".rjust(16) for r in rows)
        s = result["speedup"][kind]["audio_s_per_s"]
        print(
            f"{kind:<12}{cells}{http[MODES[2]][kind]['mean_batch']:>12.2f}{s['batched_over_one_at_a_time']:>9.2f}x{s['batched_over_unbatched']:>13.2f}x"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
