"""How much speech the separator recovers from music, and what a one-hour input costs.

Mix mode (default): clean speech mixed with music at 0 dB (power over the speech), at the separator's
rate; speech SI-SDR of the mixture and of the separated vocals, both at --eval-rate against the clean
speech, per mix and on average. Speech comes from <corpus>/speech or <corpus>/clean_en, music from
<corpus>/noise/music_*.ogg or <corpus>/noise_music/*.ogg; each mix takes the next speech clip and the
next music file at a seeded random offset.

Gate mode (--gate): the pipeline's own stages (silero VAD segmentation, the gated separation stage, the quality
stage) with the profile's settings (--profile, --set KEY=VALUE) on whole inputs: each clean clip as it is, and each
clean clip mixed with a noise recording (the corpus's non-speech ones) and with a music piece at each of --snrs dB
(whole-clip power). Per condition: the share of the clean clips' speech time (their VAD segments) that kept segments
cover, how many were separated, and every kept segment's SI-SDR against the clean speech of its span (for clean
inputs: against its own input). The bars: clean speech comes out untouched (>= 30 dB against its input); every kept
mixed segment reaches --bar-db (12 dB).

Separated mode (--gate --separated-out DIR): every utterance with a background is separated and kept; its vocals are
written to DIR/clips with DIR/labels.jsonl (good: >= --bar-db against the clean speech) for
`s2 calibrate-quality --labels DIR/labels.jsonl`, and DIR/segments.json holds per segment the separator's ratio, the
quality model's scores of the vocals and of the input and both SI-SDRs. On them the gate's decision rule is compared:
the ratio alone at 12 dB (the former rule), the configured ratio bar without the vocals' scores, and the configured
gate: speech time kept, time whose vocals reach the bar but is rejected, segments kept below the bar.
--compare-only compares again on an existing DIR/segments.json (other --set values) without separating.

Long mode (--long-hour): a one-hour 44.1 kHz input built from the same real clips (speech over a music
bed, tiled) goes through SeparationStage as one row; reports wall time, x real time and the process's
peak resident memory (ru_maxrss, the input itself included).

Usage:
  .venv/bin/python -m scripts.bench_separation --out bench_out/separation.json
  .venv/bin/python -m scripts.bench_separation --corpus /work/shared/corpus --out bench_out/separation_corpus.json
  .venv/bin/python -m scripts.bench_separation --long-hour --out bench_out/separation_hour.json
  .venv/bin/python -m scripts.bench_separation --gate --corpus /work/shared/corpus --snrs 10 5 0 --out bench_out/separation_gate.json
  .venv/bin/python -m scripts.bench_separation --gate --corpus /work/shared/corpus --snrs 10 5 0 --separated-out bench_out/separated
Options: --model spleeter|htdemucs --checkpoint PATH --mixes 12 --seed 0 --threads N --batch-size 4 --hours 1.0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from curation.io.keys import source_key
from curation.row import AudioEncoding, Row, SourceInfo
from curation.stages.separation import SeparationStage
from jobs.config import add_overrides
from models import registry
from models.signal import resample, to_mono
from schemas.config import CurateConfig, ModelSpec, SeparationConfig
from schemas.sample import AudioFacts

ANALYSIS_RATE = CurateConfig(input=".", output=".").decode.sample_rate  # what VAD and the quality model read

AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB (zero-mean signals)."""
    est, ref = est - est.mean(), ref - ref.mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def find_clips(corpus: Path) -> tuple[list[Path], list[Path]]:
    speech_dir = next((corpus / d for d in ("speech", "clean_en") if (corpus / d).is_dir()), None)
    if speech_dir is None:
        sys.exit(f"no speech/ or clean_en/ folder in {corpus}")
    speech = sorted(p for p in speech_dir.iterdir() if p.suffix in AUDIO)
    music = sorted((corpus / "noise").glob("music_*.ogg")) or sorted((corpus / "noise_music").glob("*.ogg"))
    if not speech or not music:
        sys.exit(f"need speech clips and music .ogg files under {corpus}")
    return speech, music


def read(path: Path, rate: int) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return resample(to_mono(x), sr, rate)


def music_bed(music: np.ndarray, n: int, offset: int) -> np.ndarray:
    """n samples of music from `offset`, looping if the piece is shorter."""
    return np.resize(np.roll(music, -offset), n)


def mix_at_0db(speech: np.ndarray, music: np.ndarray) -> np.ndarray:
    return speech + music * np.sqrt(np.mean(speech**2) / max(np.mean(music**2), 1e-12))


def run_mixes(args: argparse.Namespace, spec: ModelSpec) -> dict:
    speech_files, music_files = find_clips(args.corpus)
    rate = registry.model_class("separator", spec.name).native_rate(spec)
    rng = np.random.default_rng(args.seed)
    musics = {p: read(p, rate) for p in music_files}
    mixes, cases = [], []
    for k in range(args.mixes):
        sp, mp = speech_files[k % len(speech_files)], music_files[k % len(music_files)]
        speech = read(sp, rate)
        offset = int(rng.integers(0, max(1, len(musics[mp]) - len(speech))))
        mixes.append(mix_at_0db(speech, music_bed(musics[mp], len(speech), offset)))
        cases.append(
            {
                "speech": sp.name,
                "music": mp.name,
                "offset_s": round(offset / rate, 2),
                "duration_s": round(len(speech) / rate, 2),
                "ref": read(sp, args.eval_rate),
            }
        )
    separator = registry.build("separator", spec, chunk_s=args.chunk_s, overlap_s=args.overlap_s)
    start = time.perf_counter()
    vocals = separator.vocals(mixes, rate, args.eval_rate)
    seconds = time.perf_counter() - start
    for case, mix, v in zip(cases, mixes, vocals):
        ref = case.pop("ref")
        n = min(len(ref), len(v))
        case["si_sdr_before"] = round(si_sdr(resample(mix, rate, args.eval_rate)[:n], ref[:n]), 2)
        case["si_sdr_after"] = round(si_sdr(v[:n], ref[:n]), 2)
        case["improvement"] = round(case["si_sdr_after"] - case["si_sdr_before"], 2)
    audio_s = sum(len(m) for m in mixes) / rate
    print(f"{'speech':44s} {'music':44s} {'before':>7s} {'after':>7s} {'gain':>6s}")
    for c in cases:
        print(
            f"{c['speech'][:44]:44s} {c['music'][:44]:44s} {c['si_sdr_before']:7.2f} {c['si_sdr_after']:7.2f} {c['improvement']:6.2f}"
        )
    summary = {
        "mean_si_sdr_before": round(float(np.mean([c["si_sdr_before"] for c in cases])), 2),
        "mean_si_sdr_after": round(float(np.mean([c["si_sdr_after"] for c in cases])), 2),
        "mean_improvement": round(float(np.mean([c["improvement"] for c in cases])), 2),
        "audio_s": round(audio_s, 1),
        "seconds": round(seconds, 2),
        "x_real_time": round(audio_s / seconds, 1),
    }
    print(
        f"mean SI-SDR {summary['mean_si_sdr_before']:.2f} -> {summary['mean_si_sdr_after']:.2f} dB (+{summary['mean_improvement']:.2f}) over {len(cases)} mixes; "
        f"{audio_s:.0f} s of audio in {seconds:.1f} s ({summary['x_real_time']}x real time)"
    )
    return {
        "mode": "mixes",
        "model_id": separator.model_id,
        "corpus": str(args.corpus),
        "eval_rate": args.eval_rate,
        **summary,
        "mixes": cases,
    }


def _segments(stages, wave: np.ndarray, rate: int, name: str) -> list[Row]:
    """A whole input through segmentation, the gated separation and quality: all its segment rows."""
    row = Row(key=source_key(name), source_uri=name, input_index=0, unit=0)
    row.source = SourceInfo(audio=AudioFacts(sample_rate=rate, channels=1, duration_s=len(wave) / rate))
    row.set_waveform(wave, rate, ANALYSIS_RATE)  # as decode leaves it: full band and the analysis copy
    rows = [row]
    for stage in stages:
        rows = stage(rows)
    return rows


def _conditions(args: argparse.Namespace, native: int, max_rate: int):
    """Per clean clip: (clip, kind, snr, wave, rate, reference at --eval-rate) for the clip as it is (its reference: the
    input itself) and for it mixed with the next noise recording and the next music piece at each of --snrs (whole-clip
    power, at the separator's rate, each bed from a seeded random offset; reference: the clean speech)."""
    speech_files, music_files = find_clips(args.corpus)
    noise_dir = next(d for d in (args.corpus / "noise", args.corpus / "noise_music") if d.is_dir())
    noise_files = sorted(
        p for p in noise_dir.iterdir() if p.suffix in (".wav", ".flac") and p.name not in _speech(args)
    )
    rng = np.random.default_rng(args.seed)
    backgrounds = {p: read(p, native) for p in noise_files + music_files}
    for k, sp in enumerate(speech_files):
        rate = min(sf.info(sp).samplerate, max_rate)  # as decode leaves it
        clean = read(sp, rate)
        yield sp.name, "clean", None, clean, rate, resample(clean, rate, args.eval_rate)
        speech, ref = read(sp, native), read(sp, args.eval_rate)
        for kind, pool in (("noise", noise_files), ("music", music_files)):
            bg = backgrounds[pool[k % len(pool)]]
            bed = music_bed(bg, len(speech), int(rng.integers(0, max(1, len(bg) - len(speech)))))
            for snr in args.snrs:
                gain = np.sqrt(np.mean(speech**2) / max(np.mean(bed**2), 1e-12) / 10 ** (snr / 10))
                yield sp.name, kind, snr, np.clip(speech + gain * bed, -1, 1).astype(np.float32), native, ref


def _speech(args: argparse.Namespace) -> set[str]:
    """Names of the corpus's files that hold speech (MANIFEST.tsv's lang not '-'): a reverberated speech clip among the
    noises would make a speech + speech mix, not speech + noise."""
    manifest = args.corpus / "MANIFEST.tsv"
    if not manifest.exists():
        return set()
    rows = [line.split("\t") for line in manifest.read_text().splitlines()[1:]]
    return {Path(r[0]).name for r in rows if len(r) > 5 and r[5] not in ("-", "")}


def _where(clip: str, kind: str, snr: float | None, row: Row) -> dict:
    """A segment's clip, condition and span in it."""
    src = row.sample.source
    return {"clip": clip, "kind": kind, "snr_db": snr, "start_s": src.start_s, "end_s": src.end_s}


def _segment_si_sdr(audio: np.ndarray, rate: int, start_s: float, ref: np.ndarray, eval_rate: int) -> float:
    a = int(round(start_s * eval_rate))
    out = resample(audio, rate, eval_rate)
    n = min(len(out), len(ref) - a)
    return round(si_sdr(out[:n], ref[a : a + n]), 2)


def _overlap_s(spans: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)


def _condition_key(r: dict) -> tuple[str, float]:
    return r["kind"], -1.0 if r["snr_db"] is None else r["snr_db"]


def _speech_kept(segments: list[dict], field: str) -> dict[tuple[str, float], float]:
    """Per condition: the share of the clean inputs' VAD speech time (every segment VAD found in the clip as it is)
    that the segments of the same clip kept by `field` (set, not None or False) cover."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in segments:
        if r["kind"] == "clean":
            spans.setdefault(r["clip"], []).append((r["start_s"], r["end_s"]))
    total = sum(b - a for v in spans.values() for a, b in v)
    out: dict[tuple[str, float], float] = {}
    for r in segments:
        if r.get(field):
            k = _condition_key(r)
            out[k] = out.get(k, 0.0) + _overlap_s(spans.get(r["clip"], []), r["start_s"], r["end_s"]) / total
    return out


def _bar(kind: str, args: argparse.Namespace) -> float:
    return 30.0 if kind == "clean" else args.bar_db


def run_gate(args: argparse.Namespace, spec: ModelSpec) -> dict:
    """The configured gate through the pipeline's stages: per condition, the speech time kept and every kept segment's
    SI-SDR against the clean speech of its span."""
    from curation.stages.quality import QualityStage
    from curation.stages.segmentation import SegmentationStage
    from jobs.config import curate_config

    cfg = curate_config(args.profile, None, {"input": ".", "output": "."}, args.overrides)
    cfg.separation.model = spec
    stages = [
        SegmentationStage(cfg.segmentation),
        SeparationStage(cfg.separation, ANALYSIS_RATE, cfg.decode.max_output_rate, cfg.quality.model),
        QualityStage(cfg.quality),
    ]
    for stage in stages:
        stage.setup()
    native = registry.model_class("separator", spec.name).native_rate(spec)
    segments, t0 = [], time.perf_counter()
    for clip, kind, snr, wave, wrate, ref in _conditions(args, native, cfg.decode.max_output_rate):
        for row in _segments(stages, wave, wrate, f"{kind}{snr}/{clip}"):
            if row.sample is None:
                continue
            sep = row.sample.separation
            rec = {
                **_where(clip, kind, snr, row),
                "kept": row.live,
                "reject": None if row.live else f"{row.reject.stage}/{row.reject.reason}",
                "separated": bool(sep and sep.applied),
                "background": sep.background if sep else None,
                "speech_to_background_db": sep.speech_to_background_db if sep else None,
                "vocals_quality": sep.vocals_quality if sep else None,
                "overall": row.sample.quality.overall if row.sample.quality else None,
            }
            if row.live:
                rec["si_sdr"] = _segment_si_sdr(row.waveform(), row.sample_rate, rec["start_s"], ref, args.eval_rate)
            segments.append(rec)
    seconds = time.perf_counter() - t0
    kept_share = _speech_kept(segments, "kept")
    table = []
    print(
        f"{'input':8s} {'SNR':>5s} {'segments':>8s} {'kept':>5s} {'speech kept':>11s} {'separated':>9s} "
        f"{'min SI-SDR':>10s} {'mean':>6s} {'kept < bar':>10s}"
    )
    for kind, snr in sorted({_condition_key(r) for r in segments}):
        sel = [r for r in segments if _condition_key(r) == (kind, snr)]
        sis = [r["si_sdr"] for r in sel if r["kept"]]
        row = {
            "input": kind,
            "snr_db": None if snr == -1 else snr,
            "segments": len(sel),
            "kept": len(sis),
            "speech_time_kept": round(kept_share.get((kind, snr), 0.0), 4),
            "separated": sum(r["separated"] for r in sel if r["kept"]),
            "min_si_sdr": min(sis) if sis else None,
            "mean_si_sdr": round(float(np.mean(sis)), 2) if sis else None,
            "bar_db": _bar(kind, args),
            "kept_below_bar": sum(x < _bar(kind, args) for x in sis),
        }
        table.append(row)
        mn = "-" if row["min_si_sdr"] is None else f"{row['min_si_sdr']:.1f}"
        mean = "-" if row["mean_si_sdr"] is None else f"{row['mean_si_sdr']:.1f}"
        print(
            f"{kind:8s} {'' if snr == -1 else f'{snr:g}':>5s} {len(sel):8d} {len(sis):5d} {row['speech_time_kept']:11.1%} "
            f"{row['separated']:9d} {mn:>10s} {mean:>6s} {row['kept_below_bar']:10d}"
        )
    return {
        "mode": "gate",
        "gate": cfg.separation.gate.model_dump(),
        "quality_thresholds": cfg.quality.thresholds,
        "corpus": str(args.corpus),
        "table": table,
        "clean_untouched": all(not r["separated"] for r in segments if r["kind"] == "clean"),
        "kept_bar_met": all(r["kept_below_bar"] == 0 for r in table),
        "seconds": round(seconds, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "segments": segments,
    }


def separate_all(args: argparse.Namespace, cfg: CurateConfig) -> list[dict]:
    """Every utterance the gate finds a background in, separated and kept: its vocals written to --separated-out with
    a label table for `s2 calibrate-quality --labels` (good: at least --bar-db SI-SDR against the clean speech); per
    segment the separator's ratio, the quality model's scores of the vocals and of the input, and both SI-SDRs."""
    from curation.stages.segmentation import SegmentationStage
    from schemas.config import SeparationGate

    keep_all = SeparationGate(
        dimension=cfg.separation.gate.dimension,
        min_clean=cfg.separation.gate.min_clean,
        untouched_snr_db=np.inf,
        min_snr_db=None,
        vocals_min={},
    )
    separation = SeparationStage(
        cfg.separation.model_copy(update={"gate": keep_all}),
        ANALYSIS_RATE,
        cfg.decode.max_output_rate,
        cfg.quality.model,
    )
    segmentation = SegmentationStage(cfg.segmentation)
    segmentation.setup()
    separation.setup()
    scorer = separation.scorer
    native = registry.model_class("separator", cfg.separation.model.name).native_rate(cfg.separation.model)
    clips = args.separated_out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    segments = []
    for clip, kind, snr, wave, wrate, ref in _conditions(args, native, cfg.decode.max_output_rate):
        mixture = resample(wave, wrate, ANALYSIS_RATE)
        for i, row in enumerate(_segments([segmentation, separation], wave, wrate, f"{kind}{snr}/{clip}")):
            sep = row.sample.separation if row.sample else None
            rec = _where(clip, kind, snr, row)
            segments.append(rec)
            if not (row.live and sep.applied):
                rec["separated"] = False  # clean enough for the gate, or failed
                continue
            a, b = (int(round(t * ANALYSIS_RATE)) for t in (rec["start_s"], rec["end_s"]))
            vocals, before = row.analysis_waveform(), mixture[a:b]
            scores, before_scores = scorer.score([vocals, before], ANALYSIS_RATE)
            name = f"clips/{kind}{'' if snr is None else f'{snr:g}'}__{Path(clip).stem}__{i}.flac"
            sf.write(args.separated_out / name, vocals, ANALYSIS_RATE, subtype="PCM_16")
            rec.update(
                separated=True,
                uri=name,
                speech_to_background_db=sep.speech_to_background_db,
                vocals=scores.model_dump(),
                input=before_scores.model_dump(),
                si_sdr_vocals=_segment_si_sdr(vocals, ANALYSIS_RATE, rec["start_s"], ref, args.eval_rate),
                si_sdr_input=_segment_si_sdr(before, ANALYSIS_RATE, rec["start_s"], ref, args.eval_rate),
            )
            rec["good"] = rec["si_sdr_vocals"] >= _bar(kind, args)
    with open(args.separated_out / "labels.jsonl", "w") as f:
        for r in segments:
            if r["separated"]:
                f.write(
                    json.dumps(
                        {
                            "uri": r["uri"],
                            "good": int(r["good"]),
                            "si_sdr": r["si_sdr_vocals"],
                            "kind": r["kind"],
                            "snr_db": r["snr_db"],
                        }
                    )
                    + "\n"
                )
    (args.separated_out / "segments.json").write_text(json.dumps(segments, indent=1))
    return segments


def run_separated(args: argparse.Namespace, spec: ModelSpec) -> dict:
    """The gate's decision rule on every separated utterance (separate_all, or with --compare-only the segments.json
    a former run left in --separated-out), the ratio alone against the configured gate: per condition the speech time
    kept, the time whose vocals reach the bar but is rejected, and the segments kept below the bar (the input where
    the rule leaves it untouched, held to quality.thresholds; the vocals, held to the gate's vocals_min when it has
    them, else to quality.thresholds)."""
    from curation.stages.separation import SEPARATED, UNTOUCHED, gate_decision
    from jobs.config import curate_config
    from schemas.config import SeparationGate
    from schemas.quality import QualityScores

    cfg = curate_config(args.profile, None, {"input": ".", "output": "."}, args.overrides)
    cfg.separation.model = spec
    if args.compare_only:
        segments = json.loads((args.separated_out / "segments.json").read_text())
    else:
        segments = separate_all(args, cfg)
    thresholds = cfg.quality.thresholds
    configured = cfg.separation.gate
    rules = {  # the former rule, the configured ratio bar without the vocals' scores, and the configured rule
        "ratio 12 dB": SeparationGate(min_snr_db=12.0, vocals_min={}),
        f"ratio {configured.min_snr_db:g} dB": configured.model_copy(update={"vocals_min": {}}),
        "configured": configured,
    }
    evaluation = {}
    for r in segments:  # a perfect rule keeps the vocals that reach the bar, and only those: what this separator allows
        r["reachable"] = r.get("separated") and r["kind"] != "clean" and r["good"]
    reachable = _speech_kept(segments, "reachable")
    print(
        f"{'rule':14s} {'input':6s} {'SNR':>4s} {'separated':>9s} {'speech kept':>11s} {'good rejected (s)':>17s} {'kept < bar':>10s} {'reachable':>9s}"
    )
    for label, gate in rules.items():
        for r in segments:
            if not r.get("separated"):
                r[label] = "untouched" if r["kind"] == "clean" else None
                continue
            decision = gate_decision(gate, r["speech_to_background_db"], QualityScores(**r["vocals"]))
            written = {UNTOUCHED: "input", SEPARATED: "vocals"}.get(decision)
            judged = written == "vocals" and gate.vocals_min  # held to the gate's bars instead
            if written and not judged and QualityScores(**r[written]).failed(thresholds):
                written = None  # the quality stage's minimums
            r[label] = written
        kept_share = _speech_kept(segments, label)
        rows = []
        for kind, snr in sorted({_condition_key(r) for r in segments}):
            sel = [r for r in segments if _condition_key(r) == (kind, snr) and r.get("separated")]
            kept_si = [r[f"si_sdr_{r[label]}"] for r in sel if r[label]]
            rows.append(
                {
                    "input": kind,
                    "snr_db": None if snr == -1 else snr,
                    "separated": len(sel),
                    "speech_time_kept": round(kept_share.get((kind, snr), 0.0), 4),
                    "good_rejected_s": round(
                        sum(r["end_s"] - r["start_s"] for r in sel if r["good"] and not r[label]), 2
                    ),
                    "kept_below_bar": sum(x < _bar(kind, args) for x in kept_si),
                    "reachable": None if kind == "clean" else round(reachable.get((kind, snr), 0.0), 4),
                }
            )
            x = rows[-1]
            print(
                f"{label:14s} {kind:6s} {'' if snr == -1 else f'{snr:g}':>4s} {x['separated']:9d} {x['speech_time_kept']:11.1%} {x['good_rejected_s']:17.1f} {x['kept_below_bar']:10d} {'' if x['reachable'] is None else format(x['reachable'], '.1%'):>9s}"
            )
        evaluation[label] = {"gate": gate.model_dump(), "table": rows}
    print(f"{args.separated_out}: labels.jsonl and {len([r for r in segments if r.get('separated')])} clips")
    return {
        "mode": "separated",
        "corpus": str(args.corpus),
        "bar_db": args.bar_db,
        "quality_thresholds": thresholds,
        "rules": evaluation,
    }


def one_hour_row(speech_files: list[Path], music_files: list[Path], rate: int, seconds: float) -> bytearray:
    """`seconds` of speech clips over a music bed (speech 6 dB above it), tiled, as the 16-bit PCM a row holds.
    Built in place in the buffer the row will hold, so the input is in memory once."""
    parts = [read(p, rate) for p in speech_files]
    loop = np.concatenate([np.concatenate([p, np.zeros(rate // 2, np.float32)]) for p in parts])
    bed = music_bed(read(music_files[0], rate), len(loop), 0)
    loop = mix_at_0db(loop, bed) - 0.5 * bed  # music 6 dB below speech
    loop = np.clip(np.rint(loop * 32768.0), -32768, 32767).astype("<i2")
    n = int(seconds * rate)
    buf = bytearray(n * 2)
    x = np.frombuffer(buf, dtype="<i2")
    for start in range(0, n, len(loop)):
        x[start : start + len(loop)] = loop[: n - start]
    return buf


def run_long(args: argparse.Namespace, spec: ModelSpec) -> dict:
    speech_files, music_files = find_clips(args.corpus)
    # The model loads first, as in a pipeline actor, then the input arrives.
    stage = SeparationStage(
        SeparationConfig(model=spec, chunk_s=args.chunk_s, overlap_s=args.overlap_s, gate=None),
        analysis_rate=ANALYSIS_RATE,
        max_output_rate=CurateConfig(input=".", output=".").decode.max_output_rate,  # the separator's own rate
    )
    stage.setup()
    rate = stage.separator.sample_rate
    pcm = one_hour_row(speech_files, music_files, rate, args.hours * 3600)
    duration = len(pcm) / 2 / rate
    row = Row(
        key="0123456789abcdef",
        source_uri="synthetic://hour",
        input_index=0,
        unit=0,
        audio=bytes(pcm),
        encoding=AudioEncoding.PCM16,
        sample_rate=rate,
    )
    del pcm
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = stage([row])[0]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert out.live, out.reject
    vocals = out.waveform()
    result = {
        "mode": "long",
        "model_id": stage.separator.model_id,
        "input_s": round(duration, 1),
        "input_rate": rate,
        "output_rate": out.sample_rate,
        "output_s": round(len(vocals) / out.sample_rate, 3),
        "seconds": round(seconds, 1),
        "x_real_time": round(duration / seconds, 1),
        "peak_rss_mb": round(peak),
        "rss_before_stage_mb": round(rss_before),
        "input_mb": round(duration * rate * 2 / 2**20),
        "threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(
        f"{duration:.0f} s at {rate} Hz -> {result['output_s']:.0f} s at {result['output_rate']} Hz in {seconds:.1f} s ({result['x_real_time']}x real time); "
        f"peak RSS {result['peak_rss_mb']} MB (input {result['input_mb']} MB; {result['rss_before_stage_mb']} MB before the stage ran)"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data")
    ap.add_argument("--model", default="spleeter")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--chunk-s", type=float, default=SeparationConfig().chunk_s)
    ap.add_argument("--overlap-s", type=float, default=SeparationConfig().overlap_s)
    ap.add_argument("--mixes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-rate", type=int, default=16000, help="Rate at which SI-SDR is computed.")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--long-hour", action="store_true", help="Time a one-hour input through SeparationStage instead.")
    ap.add_argument("--gate", action="store_true", help="The gated pipeline stages on clean input and mixes instead.")
    ap.add_argument(
        "--snrs",
        nargs="+",
        default=["0"],
        help="Gate mode: speech-to-background ratios of the mixes (dB), e.g. --snrs 10 5 0 (or 10,5,0).",
    )
    ap.add_argument("--bar-db", type=float, default=12.0, help="Gate mode: SI-SDR every kept mixed segment must reach.")
    ap.add_argument(
        "--separated-out",
        type=Path,
        default=None,
        help="Gate mode: separate every utterance with a background, keep it, write the vocals and labels.jsonl here "
        "(for s2 calibrate-quality --labels) and compare the decision rules on them.",
    )
    ap.add_argument(
        "--compare-only",
        action="store_true",
        help="With --separated-out: compare the rules on the segments.json already there, without separating again.",
    )
    ap.add_argument("--profile", default=None, help="Gate mode: the curation profile whose gate and quality model run.")
    add_overrides(ap, "separation.gate.vocals_min.snr=3.0")
    ap.add_argument("--hours", type=float, default=1.0, help="Input length in long mode.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.snrs = [float(x) for s in args.snrs for x in s.split(",") if x]
    torch.set_num_threads(args.threads)
    spec = ModelSpec(name=args.model, checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size)
    if args.long_hour:
        result = run_long(args, spec)
    elif args.gate:
        result = run_separated(args, spec) if args.separated_out else run_gate(args, spec)
    else:
        result = run_mixes(args, spec)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
