"""The offline profile's language gate on the corpus: does pocketsphinx (English only) keep the English clips and refuse
the Mandarin ones?

Every clip of <corpus>/clean_en (English) and <corpus>/non_english (Mandarin) goes, as a whole input, through the
pipeline's segmentation stage (silero VAD + the segment policy) and transcription stage (local profile, no sidecar,
no language given), with the gate open so that every segment's evidence is recorded (`Sample.language_evidence`:
acoustic score per frame and mean word confidence). Time-reversed copies of the English clips are a second negative
set (speech-like, English spectra, no language), reported apart. For the configured gate and a sweep of `min_score`
values it reports, per segment: recall (English segments kept), the rejection rate of Mandarin and of reversed
speech, and the precision of 'kept as English' over English + Mandarin. Segments rejected by the other transcript
filters count as not kept.

    .venv/bin/python -m scripts.bench_language --corpus /work/shared/corpus --out bench_out/language.json
    .venv/bin/python -m scripts.bench_language --corpus /work/shared/corpus --option maxhmmpf=3000   # decoder settings
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from curation.io.audio import decode_file
from curation.io.keys import source_key
from curation.row import Row, SourceInfo
from curation.stages.segmentation import SegmentationStage
from curation.stages.transcription import TranscriptionStage, gate_score
from schemas.config import LanguageGate, SegmentationConfig, TranscriptionConfig
from schemas.sample import AudioFacts
from scripts.bench_asr import add_option_argument, model_options

SR = 16000
AUDIO = {".wav", ".flac", ".mp3", ".ogg"}
SWEEP = [round(x, 2) for x in np.arange(-4.2, -2.59, 0.1)]


def segments(seg: SegmentationStage, wav: np.ndarray, name: str) -> list[Row]:
    row = Row(key=source_key(name), source_uri=name, input_index=0, unit=0)
    row.source = SourceInfo(audio=AudioFacts(sample_rate=SR, channels=1, duration_s=len(wav) / SR))
    row.set_waveform(wav, SR, SR)  # already at the analysis rate
    return [r for r in seg([row]) if r.live]


def rates(records: list[dict], gate: LanguageGate, min_score: float) -> dict:
    def kept(r: dict) -> bool:
        return r["filtered"] is None and gate_score(r["evidence"], gate.confidence_weight) >= min_score

    by = {k: [kept(r) for r in records if r["set"] == k] for k in ("en", "zh", "reversed")}
    en_kept, zh_kept = sum(by["en"]), sum(by["zh"])
    return {
        "min_score": min_score,
        "english_kept": round(en_kept / max(len(by["en"]), 1), 4),
        "mandarin_rejected": round(1 - zh_kept / max(len(by["zh"]), 1), 4),
        "reversed_rejected": round(1 - sum(by["reversed"]) / max(len(by["reversed"]), 1), 4),
        "precision": round(en_kept / max(en_kept + zh_kept, 1), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data")
    ap.add_argument("--no-reversed", action="store_true", help="skip the time-reversed English set")
    add_option_argument(ap)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()

    gate = LanguageGate()
    options = model_options(args.option)
    seg = SegmentationStage(SegmentationConfig())
    # the gate wide open: every segment's evidence is recorded, the decision is replayed below per threshold
    asr = TranscriptionConfig().model.model_copy(update={"options": options})
    stage = TranscriptionStage(TranscriptionConfig(model=asr, language_gate=LanguageGate(min_score=-1e9)))
    seg.setup()
    stage.setup()
    folders = {"en": ["clean_en", "speech"], "zh": ["non_english", "zh"]}
    clips = {
        k: sorted(p for d in ds if (args.corpus / d).is_dir() for p in (args.corpus / d).iterdir() if p.suffix in AUDIO)
        for k, ds in folders.items()
    }
    jobs = [("en", p, False) for p in clips["en"]] + [("zh", p, False) for p in clips["zh"]]
    if not args.no_reversed:
        jobs += [("reversed", p, True) for p in clips["en"]]
    records = []
    t0 = time.perf_counter()
    print(f"{'set':8s} {'clip':44s} {'seg':>3s} {'dur':>5s} {'acoustic':>8s} {'conf':>5s} {'score':>6s}  text")
    for kind, path, reverse in jobs:
        wav = decode_file(str(path), SR).audio
        if reverse:
            wav = np.ascontiguousarray(wav[::-1])
        for k, row in enumerate(stage(segments(seg, wav, f"{kind}/{path.name}"))):
            ev = row.sample.language_evidence
            if ev is None:  # rejected before the recogniser gave evidence (e.g. nothing decoded)
                ev = {"acoustic_per_frame": -745.0, "mean_confidence": 0.0}
            t = row.sample.transcript
            rec = {
                "set": kind,
                "clip": path.name,
                "segment": k,
                "duration_s": round(row.sample.audio.duration_s, 2),
                "evidence": {a: ev[a] for a in ("acoustic_per_frame", "mean_confidence")},
                "filtered": None if row.live else f"{row.reject.reason}: {row.reject.detail[:80]}",
                "text": t.plain_text() if t else None,
            }
            records.append(rec)
            score = gate_score(rec["evidence"], gate.confidence_weight)
            print(
                f"{kind:8s} {path.name[:44]:44s} {k:3d} {rec['duration_s']:5.1f} {ev['acoustic_per_frame']:8.2f} "
                f"{ev['mean_confidence']:5.2f} {score:6.2f}  {(rec['text'] or rec['filtered'] or '')[:50]}",
                flush=True,
            )
    sweep = [rates(records, gate, m) for m in SWEEP]
    chosen = rates(records, gate, gate.min_score)
    print(f"\n{'min_score':>9s} {'EN kept':>8s} {'ZH rejected':>11s} {'reversed rejected':>17s} {'precision':>9s}")
    for r in sweep + [chosen]:
        mark = "  <- default" if r is chosen else ""
        print(
            f"{r['min_score']:9.2f} {r['english_kept']:8.1%} {r['mandarin_rejected']:11.1%} "
            f"{r['reversed_rejected']:17.1%} {r['precision']:9.1%}{mark}"
        )
    result = {
        "gate": gate.model_dump(),
        "options": options,
        "segments": {k: sum(r["set"] == k for r in records) for k in ("en", "zh", "reversed")},
        "default": chosen,
        "sweep": sweep,
        "records": records,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if chosen["mandarin_rejected"] == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
