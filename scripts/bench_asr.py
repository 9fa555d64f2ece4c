"""Word error rate of a transcriber on the clips of a corpus that have reference transcripts.

    .venv/bin/python -m scripts.bench_asr                                  # tests/data, pocketsphinx
    .venv/bin/python -m scripts.bench_asr --corpus /work/shared/corpus --out bench_out/asr.json
    .venv/bin/python -m scripts.bench_asr --corpus /work/shared/corpus --option beam=1e-40 --option maxwpf=20
    .venv/bin/python -m scripts.bench_asr --model qwen3-omni --checkpoint /models/Qwen3-Omni-30B-A3B-Instruct --device cuda

The corpus has a MANIFEST.tsv (path, lang, transcript, ...); a clip listed under another folder than the
one it is stored in is found by file name. Speaker-annotated references ('[1.4-2.8 spk] WORDS | ...') are
reduced to their words. Exits 1 when the overall WER exceeds --max-wer (a sanity bound, not a target).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import yaml

from curation.io.audio import decode_file
from models import registry
from models.wer import normalize_words, word_errors
from schemas.config import ModelSpec

SR = 16000


def find_clip(corpus: Path, rel: str) -> Path | None:
    path = corpus / rel
    if path.exists():
        return path
    return next(iter(sorted(corpus.rglob(Path(rel).name))), None)


def reference_words(text: str) -> str:
    return re.sub(r"\[[^\]]*\]|\|", " ", text)


def add_option_argument(ap: argparse.ArgumentParser) -> None:
    """--option KEY=VALUE (repeatable): a transcriber option, read by `model_options`."""
    ap.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option (YAML value), e.g. a pocketsphinx search setting: --option beam=1e-40",
    )


def model_options(values: list[str]) -> dict:
    """--option KEY=VALUE values -> a ModelSpec's options (each value read as YAML: numbers, booleans)."""
    return {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data")
    ap.add_argument("--model", default="pocketsphinx")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--languages", default="en", help="comma-separated manifest languages to score")
    add_option_argument(ap)
    ap.add_argument("--max-wer", type=float, default=0.40)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()

    langs = set(args.languages.split(","))
    with open(args.corpus / "MANIFEST.tsv", newline="") as f:
        rows = [
            r for r in csv.DictReader(f, delimiter="\t") if r.get("transcript", "").strip() and r.get("lang") in langs
        ]
    options = model_options(args.option)
    spec = ModelSpec(name=args.model, checkpoint=args.checkpoint, device=args.device, batch_size=1, options=options)
    transcriber = registry.build("asr", spec)

    clips, seen = [], set()
    total_err = total_ref = 0
    audio_s = compute_s = cpu_s = 0.0
    print(f"{'clip':60s} {'dur_s':>6s} {'words':>5s} {'WER':>6s}  hypothesis")
    for row in rows:
        path = find_clip(args.corpus, row["path"])
        if path is None or path in seen:
            continue
        seen.add(path)
        x = decode_file(str(path), SR).audio
        t0, c0 = time.perf_counter(), time.process_time()
        (result,) = transcriber.transcribe([x], SR, language=row["lang"])
        compute_s, cpu_s = compute_s + time.perf_counter() - t0, cpu_s + time.process_time() - c0
        audio_s += len(x) / SR
        hyp = result.transcript.plain_text() if result.transcript else ""
        ref = reference_words(row["transcript"])
        err, n = word_errors(ref, hyp)
        total_err, total_ref = total_err + err, total_ref + n
        clips.append(
            {
                "clip": row["path"],
                "duration_s": round(len(x) / SR, 3),
                "reference_words": n,
                "errors": err,
                "wer": round(err / max(n, 1), 4),
                "hypothesis": hyp,
                "error": result.error,
            }
        )
        print(f"{row['path'][:60]:60s} {len(x) / SR:6.2f} {n:5d} {err / max(n, 1):6.1%}  {hyp[:70]}")
    overall = total_err / max(total_ref, 1)
    rtf = compute_s / max(audio_s, 1e-9)
    print(
        f"{'overall':60s} {audio_s:6.1f} {total_ref:5d} {overall:6.1%}  ({len(clips)} clips, real-time factor {rtf:.2f}, CPU {cpu_s:.2f} s, bound {args.max_wer:.0%})"
    )
    summary = {
        "model_id": transcriber.model_id,
        "corpus": str(args.corpus),
        "languages": sorted(langs),
        "clips": clips,
        "overall_wer": round(overall, 4),
        "reference_words": total_ref,
        "audio_s": round(audio_s, 2),
        "real_time_factor": round(rtf, 3),
        "cpu_s": round(cpu_s, 3),
        "options": options,
        "max_wer": args.max_wer,
        "normalisation": normalize_words.__doc__,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if overall <= args.max_wer else 1


if __name__ == "__main__":
    sys.exit(main())
