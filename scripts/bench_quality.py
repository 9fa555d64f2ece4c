"""DNSMOS (local-profile quality scorer) on controlled degradations of clean speech, and what the filter keeps.

For every clean clip (cropped to --crop-s, one DNSMOS window by default): the clip itself, the clip mixed with
each noise recording at each --snrs (whole-clip SNR), and the clip under each other degradation of
curation/evaluation/degrade.py at three strengths. Prints mean/min/max OVRL, SIG, BAK, P.808 per condition and how many
pass the thresholds (the QualityConfig defaults, or --threshold DIM=VALUE ...), plus CPU time per window.

Usage:
  .venv/bin/python -m scripts.bench_quality --out bench_out/quality_dnsmos.json                  # tests/data
  .venv/bin/python -m scripts.bench_quality --speech /work/shared/corpus/clean_en \\
      --noise /work/shared/corpus/noise_music --out bench_out/quality_dnsmos_corpus.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from curation.evaluation import degrade as D
from curation.io.audio import decode_file
from models import registry
from schemas.config import ModelSpec, QualityConfig

ROOT = Path(__file__).resolve().parent.parent

SR = 16000
EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}


def _files(folder: str) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in EXTENSIONS)


def _conditions(
    x: np.ndarray, other: np.ndarray, noises: dict[str, np.ndarray], snrs: list[float]
) -> dict[str, np.ndarray]:
    rng = lambda: np.random.default_rng(0)  # noqa: E731  same noise offsets for every condition
    out = {"clean": x}
    for name, n in noises.items():
        for s in snrs:
            out[f"noise {s:g} dB|{name}"] = D.add_noise(x, n, s, rng()).audio
    for q in (0.01, 0.05, 0.15):
        out[f"clipping {q:.0%}"] = D.clip(x, q).audio
    for hz in (4000, 2000, 1000):
        out[f"low-pass {hz} Hz"] = D.band_limit(x, SR, hz).audio
    for rt in (0.3, 0.6, 1.0):
        out[f"reverb RT60 {rt:g} s"] = D.reverberate(x, SR, rt, rng()).audio
    for kbps in (24, 12, 6):
        out[f"opus {kbps} kbps"] = D.compress(x, SR, "opus", kbps).audio
    for sir in (20, 10, 0):
        out[f"2nd speaker {sir} dB"] = D.add_speaker(x, other, sir, rng()).audio
    return {k: D.fit_peak(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech", default=str(ROOT / "tests" / "data" / "speech"))
    p.add_argument("--noise", default=str(ROOT / "tests" / "data" / "noise"))
    p.add_argument("--snrs", type=float, nargs="+", default=[20.0, 10.0, 5.0, 0.0])
    p.add_argument("--crop-s", type=float, default=9.0, help="score the first N s of each clip (0 = whole clip)")
    p.add_argument(
        "--threshold", action="append", default=[], metavar="DIM=VALUE", help="replaces the QualityConfig defaults"
    )
    p.add_argument("--batch-size", type=int, default=4, help="DNSMOS windows per ONNX run")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    thresholds = {k: float(v) for k, _, v in (t.partition("=") for t in args.threshold)} or QualityConfig().thresholds
    crop = int(args.crop_s * SR) if args.crop_s > 0 else None
    speech = {f.name: decode_file(str(f), SR).audio[:crop] for f in _files(args.speech)}
    noises = {f.stem: decode_file(str(f), SR).audio for f in _files(args.noise)}
    scorer = registry.build("quality", ModelSpec(name="dnsmos", batch_size=args.batch_size))

    names = sorted(speech)
    items: list[dict] = []
    windows = 0
    start = time.perf_counter()
    for k, name in enumerate(names):
        conds = _conditions(speech[name], speech[names[(k + 1) % len(names)]], noises, args.snrs)
        scores = scorer.score(list(conds.values()), SR)
        windows += sum(len(scorer.windows(w)) for w in conds.values())
        for cond, s in zip(conds, scores):
            items.append({"clip": name, "condition": cond, **s.extra, "kept": not s.failed(thresholds)})
    elapsed = time.perf_counter() - start

    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it["condition"].split("|")[0], []).append(it)
    rule = " & ".join(f"{k}>={v:g}" for k, v in thresholds.items())
    print(f"DNSMOS on {len(names)} clips (first {args.crop_s:g} s) x {len(noises)} noises; kept = {rule}")
    print(f"{'condition':<22}{'n':>4}{'OVRL mean [min, max]':>24}{'SIG':>7}{'BAK':>7}{'P808':>7}{'kept':>8}")
    summary = {}
    for cond, rows in groups.items():
        o = np.array([r["ovrl"] for r in rows])
        row = {
            "n": len(rows), "ovrl_mean": o.mean(), "ovrl_min": o.min(), "ovrl_max": o.max(),
            "sig_mean": float(np.mean([r["sig"] for r in rows])), "bak_mean": float(np.mean([r["bak"] for r in rows])),
            "p808_mean": float(np.mean([r["p808"] for r in rows])), "kept": sum(r["kept"] for r in rows),
        }  # fmt: skip
        summary[cond] = row
        print(
            f"{cond:<22}{row['n']:>4}{row['ovrl_mean']:>10.2f} [{row['ovrl_min']:.2f}, {row['ovrl_max']:.2f}]{row['sig_mean']:>7.2f}{row['bak_mean']:>7.2f}{row['p808_mean']:>7.2f}{row['kept']:>5}/{row['n']}"
        )
    print(
        "0 dB kept per noise: "
        + ", ".join(
            f"{n}: {sum(r['kept'] for r in items if r['condition'] == f'noise 0 dB|{n}')}/{len(names)}" for n in noises
        )
        if 0.0 in args.snrs
        else ""
    )
    print(
        f"{windows} windows in {elapsed:.1f} s: {elapsed / windows * 1000:.0f} ms per 9.01 s window (CPU, 1 thread per session)"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps(
                {"thresholds": thresholds, "summary": summary, "items": items, "s_per_window": elapsed / windows},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
