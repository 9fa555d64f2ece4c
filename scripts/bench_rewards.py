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

Each HTTP mode sends the items --rounds times. The services run on a local Ray with --cores CPUs, deployed as
`s2 serve-rewards --profile local` deploys them; the client is models.rewards.client.RewardClient. Model loading,
Ray and Serve start-up are excluded; every mode is warmed up with one request first. The speed-up is concurrent
batched over one at a time, and batched over unbatched (what batching itself adds to concurrency).
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

from scripts.bench_curation import machine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
KINDS = ("stt", "quality", "similarity", "total")
ARCTIC = {
    "aew_a0001": "Author of the danger trail, Philip Steels, etc.",
    "axb_a0004": "Lord, but I'm glad to see you again, Phil.",
}


def corpus() -> list:
    """RewardItems: every speech clip with a known transcript; the reference voice is a clip of another speaker."""
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


def in_process(cfg, items, batch: int) -> dict:
    from models.rewards import Wrappers, build_reward

    wrappers = Wrappers(cfg)
    out = {}
    for kind in KINDS:
        reward = build_reward(kind, cfg, wrappers)
        reward.score(items[:1])  # warm-up
        t, cpu = time.perf_counter(), time.process_time()
        results = [r for k in range(0, len(items), batch) for r in reward.score(items[k : k + batch])]
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        assert all(r.error is None for r in results), [r.error for r in results if r.error]
        out[kind] = {
            "audio_s_per_s": seconds(items) / wall,
            "wall_s": wall,
            "cpu_s": cpu,
            "mean_score": float(np.mean([r.score for r in results])),
        }
        print(f"in-process {kind:<11} {out[kind]['audio_s_per_s']:8.1f} audio-s/s", flush=True)
    return out


def _stats(url: str, token: str) -> dict:
    return requests.get(f"{url}/v1/stats", headers={"Authorization": f"Bearer {token}"}, timeout=60).json()


def over_http(url: str, token: str, kind: str, items, clients: int) -> dict:
    """Every item its own request, from `clients` threads, each with its own client."""
    from models.rewards.client import RewardClient

    pool = [RewardClient(url, kind, token=token, timeout_s=600) for _ in range(clients)]
    pool[0].score(items[:1])  # warm-up
    before = _stats(url, token)[kind]
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        results = list(ex.map(lambda k: pool[k % clients].score([items[k]])[0], range(len(items))))
    wall = time.perf_counter() - t
    after = _stats(url, token)[kind]
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    ran = {int(size): n - before.get(size, 0) for size, n in after.items() if n > before.get(size, 0)}
    for c in pool:
        c.close()
    return {
        "audio_s_per_s": seconds(items) / wall,
        "wall_s": wall,
        "requests": len(items),
        "batches": ran,
        "mean_batch": sum(s * n for s, n in ran.items()) / max(1, sum(ran.values())),
    }


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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a reward setting, as `s2 serve-rewards --set`",
    )
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
        "max_batch_size": cfg.service.max_batch_size,
        "in_process": in_process(cfg, items, args.batch),
        "http": {},
    }

    from ray import serve

    from pipelines.ray_env import ensure_ray
    from pipelines.serve_rewards import start

    ensure_ray(num_cpus=args.cores)
    token, port = secrets.token_urlsafe(16), _free_port()
    sent = items * args.rounds
    modes = [
        ("one at a time", cfg, 1),
        (
            "concurrent, unbatched",
            cfg.model_copy(update={"service": cfg.service.model_copy(update={"max_batch_size": 1})}),
            args.clients,
        ),
        ("concurrent, batched", cfg, args.clients),
    ]
    try:
        for mode, mode_cfg, clients in modes:
            url = start(mode_cfg, token, "127.0.0.1", port)
            result["http"][mode] = {}
            for kind in KINDS:
                row = result["http"][mode][kind] = over_http(url, token, kind, sent, clients)
                print(
                    f"{mode:<22} {kind:<11} {row['audio_s_per_s']:8.1f} audio-s/s   mean batch {row['mean_batch']:.2f}",
                    flush=True,
                )
    finally:
        serve.shutdown()
    http = result["http"]
    result["speedup"] = {
        kind: {
            "batched_over_one_at_a_time": http["concurrent, batched"][kind]["audio_s_per_s"]
            / http["one at a time"][kind]["audio_s_per_s"],
            "batched_over_unbatched": http["concurrent, batched"][kind]["audio_s_per_s"]
            / http["concurrent, unbatched"][kind]["audio_s_per_s"],
        }
        for kind in KINDS
    }
    result["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(
        f"\naudio-seconds scored per second ({args.clients} clients, max batch {cfg.service.max_batch_size}, {args.cores} cores)"
    )
    print(
        f"{'reward':<12}{'in-process':>11}{'one at a time':>15}{'unbatched':>11}{'batched':>9}{'mean batch':>12}{'speed-up':>10}{'vs unbatched':>14}"
    )
    for kind in KINDS:
        row = [result["in_process"][kind]["audio_s_per_s"]] + [http[m][kind]["audio_s_per_s"] for m, _, _ in modes]
        s = result["speedup"][kind]
        print(
            f"{kind:<12}{row[0]:>11.1f}{row[1]:>15.1f}{row[2]:>11.1f}{row[3]:>9.1f}{http['concurrent, batched'][kind]['mean_batch']:>12.2f}"
            f"{s['batched_over_one_at_a_time']:>9.2f}x{s['batched_over_unbatched']:>13.2f}x"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
