"""Speaker-turn assignment (curation.policy.diarization) measured two ways.

1. Built two-speaker dialogues: clips of two different corpus speakers, silence-trimmed, taking turns
   0.4 s apart. Bar: the right number of speakers and >= 85% of speech time on the right speaker.
2. AMI far-field meeting audio (pyannote's dev00/dev01) against its RTTM: the same figure over the
   reference speech where exactly one person talks (a measurement, no bar).

    .venv/bin/python -m scripts.bench_speakers
    .venv/bin/python -m scripts.bench_speakers --corpus /work/shared/corpus --out bench_out/speakers.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from curation.io.audio import decode_file
from curation.policy.diarization import (
    SpeakerTurn,
    attribution_accuracy,
    diarization_params,
    diarize,
    join_utterances,
    speech_span,
)
from models import registry
from schemas.config import ModelSpec

SR = 16000
BAR = 0.85
# (speaker A clips, speaker B clips); a clip named 'file:n' is cut into n equal turns.
PAIRS = {
    "cmu aew / cmu axb": (
        [f"pyroomacoustics__cmu_arctic_us_aew_a000{i}.wav" for i in (1, 2, 3)],
        [f"pyroomacoustics__cmu_arctic_us_axb_a000{i}.wav" for i in (4, 5, 6)],
    ),
    "ljspeech / librispeech 1995": (
        ["speechbrain__LJ050-0131.wav:2", "lhotse__LJ002-0020.wav"],
        ["wenet__librispeech-1995-1837-0001.wav:3"],
    ),
    "librispeech 2412 / librispeech 1272": (["lhotse__2412-153948-0000.flac:3"], ["leopard__test.wav:2"]),
}


def find(corpus: Path, pattern: str) -> Path:
    hits = sorted(p for p in corpus.rglob(pattern) if p.is_file())
    if not hits:
        raise SystemExit(f"{pattern} not found under {corpus}")
    return hits[0]


def turns_of(corpus: Path, item: str) -> list[np.ndarray]:
    name, _, pieces = item.partition(":")
    x = decode_file(str(find(corpus, name)), SR).audio
    start, end = speech_span(x, SR)
    x = x[int(start * SR) : int(end * SR)]
    n = len(x) // int(pieces or 1)
    return [x[k * n : (k + 1) * n] for k in range(int(pieces or 1))]


def read_rttm(path: Path, uri: str) -> list[SpeakerTurn]:
    names: dict[str, int] = {}
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER" and f[1] == uri:
            turns.append(SpeakerTurn(names.setdefault(f[7], len(names)), float(f[3]), float(f[3]) + float(f[4])))
    return turns


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data")
    ap.add_argument("--embedder", default="resemblyzer")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()

    spec = ModelSpec(name=args.embedder, checkpoint=args.checkpoint, device=args.device, batch_size=16)
    embedder, params = registry.build("speaker", spec), diarization_params(spec)
    results = {"embedder": embedder.model_id, "params": vars(params), "bar": BAR, "dialogues": [], "meetings": []}

    print(f"{'dialogue':40s} {'dur_s':>6s} {'found':>5s} {'true':>4s} {'on right spk':>12s}  ok")
    for name, (a_items, b_items) in PAIRS.items():
        a = [c for item in a_items for c in turns_of(args.corpus, item)]
        b = [c for item in b_items for c in turns_of(args.corpus, item)]
        clips = [
            c
            for k in range(max(len(a), len(b)))
            for c in ([(0, a[k])] if k < len(a) else []) + ([(1, b[k])] if k < len(b) else [])
        ]
        wav, ref = join_utterances(clips, SR, pause_s=0.4)
        t0 = time.perf_counter()
        hyp = diarize(wav, SR, embedder, params)
        found, acc = len({t.speaker for t in hyp}), attribution_accuracy(ref, hyp)
        ok = found == 2 and acc >= BAR
        results["dialogues"].append(
            {
                "pair": name,
                "duration_s": round(len(wav) / SR, 2),
                "speakers_found": found,
                "speakers_true": 2,
                "accuracy": round(acc, 4),
                "passes": ok,
                "seconds": round(time.perf_counter() - t0, 2),
                "turns": [vars(t) for t in hyp],
            }
        )
        print(f"{name:40s} {len(wav) / SR:6.1f} {found:5d} {2:4d} {acc:12.1%}  {'yes' if ok else 'NO'}")

    rttms = sorted(args.corpus.rglob("*debug.development.rttm"))
    for uri in ("dev00", "dev01"):
        audio = sorted(p for p in args.corpus.rglob(f"*{uri}.*") if p.suffix in (".wav", ".flac"))
        if not audio or not rttms:
            continue
        ref = read_rttm(rttms[0], uri)
        x = decode_file(str(audio[0]), SR).audio
        hyp = diarize(x, SR, embedder, params)
        found, acc = len({t.speaker for t in hyp}), attribution_accuracy(ref, hyp)
        true = len({t.speaker for t in ref})
        results["meetings"].append(
            {
                "uri": uri,
                "file": str(audio[0]),
                "duration_s": round(len(x) / SR, 2),
                "speakers_found": found,
                "speakers_true": true,
                "accuracy": round(acc, 4),
                "turns": [vars(t) for t in hyp],
            }
        )
        print(
            f"{'AMI ' + uri + ' (' + audio[0].name + ')':40s} {len(x) / SR:6.1f} {found:5d} {true:4d} {acc:12.1%}  (measurement)"
        )

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0 if all(d["passes"] for d in results["dialogues"]) else 1


if __name__ == "__main__":
    sys.exit(main())
