"""How much speech the separator recovers from music, and what a one-hour input costs.

Mix mode (default): clean speech mixed with music at 0 dB (power over the speech), at the separator's
rate; speech SI-SDR of the mixture and of the separated vocals, both at --eval-rate against the clean
speech, per mix and on average. Speech comes from <corpus>/speech or <corpus>/clean_en, music from
<corpus>/noise/music_*.ogg or <corpus>/noise_music/*.ogg; each mix takes the next speech clip and the
next music file at a seeded random offset.

Gate mode (--gate): the pipeline's own stages (silero VAD segmentation, the gated separation stage, the quality
stage with the profile's thresholds) on whole inputs: each clean clip as it is, and each clean clip mixed with a
noise recording and with a music piece at --snrs dB (whole-clip power; 0 dB by default). For every kept segment, its
SI-SDR against the clean speech of its span (for clean inputs: against its own input), whether separation ran, and the
share of segments rejected per condition. The bars: clean speech comes out at >= 30 dB against its input, and at 0 dB
every kept segment reaches >= 10 dB against the clean speech.

Long mode (--long-hour): a one-hour 44.1 kHz input built from the same real clips (speech over a music
bed, tiled) goes through SeparationStage as one row; reports wall time, x real time and the process's
peak resident memory (ru_maxrss, the input itself included).

Usage:
  .venv/bin/python -m scripts.bench_separation --out bench_out/separation.json
  .venv/bin/python -m scripts.bench_separation --corpus /work/shared/corpus --out bench_out/separation_corpus.json
  .venv/bin/python -m scripts.bench_separation --long-hour --out bench_out/separation_hour.json
  .venv/bin/python -m scripts.bench_separation --gate --corpus /work/shared/corpus --snrs 0,5,10 --out bench_out/separation_gate.json
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


def run_gate(args: argparse.Namespace, spec: ModelSpec) -> dict:
    from curation.stages.quality import QualityStage
    from curation.stages.segmentation import SegmentationStage

    cfg = CurateConfig(input=".", output=".")
    cfg.separation.model = spec
    stages = [
        SegmentationStage(cfg.segmentation),
        SeparationStage(cfg.separation, ANALYSIS_RATE, cfg.decode.max_output_rate, cfg.quality.model),
        QualityStage(cfg.quality),
    ]
    for stage in stages:
        stage.setup()
    speech_files, music_files = find_clips(args.corpus)
    noise_dir = next(d for d in (args.corpus / "noise", args.corpus / "noise_music") if d.is_dir())
    noise_files = sorted(p for p in noise_dir.iterdir() if p.suffix in (".wav", ".flac"))
    native = registry.model_class("separator", spec.name).native_rate(spec)
    rng = np.random.default_rng(args.seed)
    snrs = [float(x) for x in args.snrs.split(",")]
    segments, t0 = [], time.perf_counter()
    backgrounds = {p: read(p, native) for p in noise_files + music_files}
    for k, sp in enumerate(speech_files):
        info = sf.info(sp)
        rate = min(info.samplerate, cfg.decode.max_output_rate)  # as decode leaves it
        clean = read(sp, rate)
        conditions = [("clean", None, clean, rate)]
        speech = read(sp, native)
        for kind, pool in (("noise", noise_files), ("music", music_files)):
            bg = backgrounds[pool[k % len(pool)]]
            bed = music_bed(bg, len(speech), int(rng.integers(0, max(1, len(bg) - len(speech)))))
            for snr in snrs:
                gain = np.sqrt(np.mean(speech**2) / max(np.mean(bed**2), 1e-12) / 10 ** (snr / 10))
                conditions.append((kind, snr, np.clip(speech + gain * bed, -1, 1).astype(np.float32), native))
        ref = read(sp, args.eval_rate)
        for kind, snr, wave, wrate in conditions:
            against = resample(wave, wrate, args.eval_rate) if kind == "clean" else ref
            for row in _segments(stages, wave, wrate, f"{kind}{snr}/{sp.name}"):
                if row.sample is None:
                    continue
                sep = row.sample.separation
                rec = {
                    "clip": sp.name,
                    "kind": kind,
                    "snr_db": snr,
                    "start_s": row.sample.source.start_s,
                    "end_s": row.sample.source.end_s,
                    "kept": row.live,
                    "reject": None if row.live else f"{row.reject.stage}/{row.reject.reason}",
                    "separated": bool(sep and sep.applied),
                    "background": sep.background if sep else None,
                    "speech_to_background_db": sep.speech_to_background_db if sep else None,
                    "overall": row.sample.quality.overall if row.sample.quality else None,
                }
                if row.live:
                    a = int(round(rec["start_s"] * args.eval_rate))
                    out = resample(row.waveform(), row.sample_rate, args.eval_rate)
                    n = min(len(out), len(against) - a)
                    rec["si_sdr"] = round(si_sdr(out[:n], against[a : a + n]), 2)
                segments.append(rec)
    seconds = time.perf_counter() - t0
    conditions = sorted({(r["kind"], r["snr_db"] if r["snr_db"] is not None else -1) for r in segments})
    table = []
    print(
        f"{'input':8s} {'SNR':>5s} {'segments':>8s} {'kept':>5s} {'rejected':>8s} {'separated':>9s} {'min SI-SDR':>10s} {'mean':>6s} {'kept < bar':>10s}"
    )
    for kind, snr in conditions:
        sel = [r for r in segments if r["kind"] == kind and (r["snr_db"] if r["snr_db"] is not None else -1) == snr]
        kept = [r for r in sel if r["kept"]]
        bar = 30.0 if kind == "clean" else 10.0
        sis = [r["si_sdr"] for r in kept]
        row = {
            "input": kind,
            "snr_db": None if snr == -1 else snr,
            "segments": len(sel),
            "kept": len(kept),
            "rejected": round(1 - len(kept) / max(len(sel), 1), 4),
            "separated": sum(r["separated"] for r in kept),
            "min_si_sdr": min(sis) if sis else None,
            "mean_si_sdr": round(float(np.mean(sis)), 2) if sis else None,
            "bar_db": bar,
            "kept_below_bar": sum(x < bar for x in sis),
        }
        table.append(row)
        mn = "-" if row["min_si_sdr"] is None else f"{row['min_si_sdr']:.1f}"
        mean = "-" if row["mean_si_sdr"] is None else f"{row['mean_si_sdr']:.1f}"
        print(
            f"{kind:8s} {'' if snr == -1 else f'{snr:g}':>5s} {len(sel):8d} {len(kept):5d} {row['rejected']:8.0%} "
            f"{row['separated']:9d} {mn:>10s} {mean:>6s} {row['kept_below_bar']:10d}"
        )
    clean_ok = all(r["kept_below_bar"] == 0 for r in table if r["input"] == "clean")
    mixed_ok = all(r["kept_below_bar"] == 0 for r in table if r["input"] != "clean" and r["snr_db"] == 0)
    return {
        "mode": "gate",
        "gate": cfg.separation.gate.model_dump(),
        "quality_thresholds": cfg.quality.thresholds,
        "corpus": str(args.corpus),
        "table": table,
        "clean_bar_met": clean_ok,
        "mixed_0db_bar_met": mixed_ok,
        "seconds": round(seconds, 1),
        "segments": segments,
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
    ap.add_argument("--snrs", default="0", help="Gate mode: comma-separated speech-to-background ratios (dB).")
    ap.add_argument("--hours", type=float, default=1.0, help="Input length in long mode.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = ModelSpec(name=args.model, checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size)
    result = run_long(args, spec) if args.long_hour else run_gate(args, spec) if args.gate else run_mixes(args, spec)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
