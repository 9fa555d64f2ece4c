"""Short-utterance retention of the segmentation policy on the corpus's speech.

Every clip of <corpus>/clean_en and <corpus>/multispeaker goes, as a whole input, through the pipeline's own decode
and segmentation stages (silero VAD + the segment policy), once with the default policy (utterances down to
`min_s` 1 s, joined toward `target_s` across short pauses, a short whole input kept whole) and once with the former
one (3 s minimum, no joining, no whole-input rule). Per policy: clips with at least one kept segment, by clip length
(under 3 s, 3-6 s, longer), the share of VAD speech time inside kept segments, and the kept segments' durations.

    .venv/bin/python -m scripts.bench_length --corpus /work/shared/corpus --out bench_out/length.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from curation.row import Row
from curation.stages.pipeline import CurationPipeline
from jobs.config import curate_config
from schemas.config import CurateConfig

FORMER = ["segmentation.min_s=3.0", "segmentation.target_s=0", "segmentation.whole_input_max_s=0"]
BUCKETS = (("< 3 s", 0.0, 3.0), ("3-6 s", 3.0, 6.0), (">= 6 s", 6.0, float("inf")))
AUDIO = {".wav", ".flac", ".mp3", ".ogg"}


def clips(corpus: Path) -> list[Path]:
    return sorted(p for d in ("clean_en", "multispeaker") for p in (corpus / d).iterdir() if p.suffix in AUDIO)


def measure(cfg: CurateConfig, files: list[Path]) -> dict:
    cfg.separation.enabled = False  # gated separation runs after VAD: it does not change what VAD keeps
    pipeline = CurationPipeline.from_config(cfg)
    decode, seg = pipeline.decode, next(s for s in pipeline.models if s.name == "segmentation")
    seg.setup()
    per_clip = []
    for i, path in enumerate(files):
        rows = decode([Row(key=f"{i:016x}", source_uri=str(path), input_index=i, unit=0)])
        duration = sum(r.n_samples / r.sample_rate for r in rows if r.live)
        out = seg(rows)
        kept = [r.sample.source.end_s - r.sample.source.start_s for r in out if r.live]
        speech = sum(r.sample.vad.speech_s for r in out if r.sample is not None)
        per_clip.append(
            {
                "clip": path.name,
                "duration_s": round(duration, 2),
                "kept_segments": len(kept),
                "kept_s": round(sum(kept), 2),
                "speech_s": round(speech, 2),
                "kept_speech_s": round(sum(r.sample.vad.speech_s for r in out if r.live), 2),
                "rejects": sorted({r.reject.reason.value for r in out if not r.live}),
            }
        )
    buckets = {}
    for name, lo, hi in BUCKETS:
        sel = [c for c in per_clip if lo <= c["duration_s"] < hi]
        buckets[name] = {"clips": len(sel), "kept": sum(c["kept_segments"] > 0 for c in sel)}
    durations = [c["kept_s"] / c["kept_segments"] for c in per_clip if c["kept_segments"]]
    speech = sum(c["speech_s"] for c in per_clip)
    return {
        "clips": len(per_clip),
        "clips_kept": sum(c["kept_segments"] > 0 for c in per_clip),
        "by_length": buckets,
        "speech_time_kept": round(sum(c["kept_speech_s"] for c in per_clip) / max(speech, 1e-9), 4),
        "segments": sum(c["kept_segments"] for c in per_clip),
        "mean_segment_s": round(float(np.mean(durations)), 2) if durations else None,
        "per_clip": per_clip,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", default="bench_out/length.json")
    args = p.parse_args(argv)
    files = clips(args.corpus)
    direct = {"input": str(args.corpus), "output": "."}
    result = {
        "default": measure(curate_config("local", direct=direct), files),
        "former_3s_minimum": measure(curate_config("local", direct=direct, overrides=FORMER), files),
    }
    print(f"{'policy':<20}{'clips kept':>12}" + "".join(f"{b[0]:>10}" for b in BUCKETS) + f"{'speech kept':>13}")
    for name, r in result.items():
        cells = "".join(f"{r['by_length'][b[0]]['kept']:>5}/{r['by_length'][b[0]]['clips']:<4}" for b in BUCKETS)
        print(f"{name:<20}{r['clips_kept']:>6}/{r['clips']:<5}{cells}{r['speech_time_kept']:>12.1%}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
