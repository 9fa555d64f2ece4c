"""How much speech the separator recovers from music, and what a one-hour input costs.

Mix mode (default): clean speech mixed with music at 0 dB (power over the speech), at the separator's
rate; speech SI-SDR of the mixture and of the separated vocals, both at --eval-rate against the clean
speech, per mix and on average. Speech comes from <corpus>/speech or <corpus>/clean_en, music from
<corpus>/noise/music_*.ogg or <corpus>/noise_music/*.ogg; each mix takes the next speech clip and the
next music file at a seeded random offset.

Long mode (--long-hour): a one-hour 44.1 kHz input built from the same real clips (speech over a music
bed, tiled) goes through SeparationStage as one row; reports wall time, x real time and the process's
peak resident memory (ru_maxrss, the input itself included).

Usage:
  .venv/bin/python -m scripts.bench_separation --out bench_out/separation.json
  .venv/bin/python -m scripts.bench_separation --corpus /work/shared/corpus --out bench_out/separation_corpus.json
  .venv/bin/python -m scripts.bench_separation --long-hour --out bench_out/separation_hour.json
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

from curation.row import AudioEncoding, Row
from curation.stages.separation import SeparationStage
from models import registry
from models.signal import resample, to_mono
from schemas.config import ModelSpec, SeparationConfig

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
        SeparationConfig(model=spec, chunk_s=args.chunk_s, overlap_s=args.overlap_s), output_rate=args.eval_rate
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
    ap.add_argument(
        "--eval-rate", type=int, default=16000, help="Rate of scoring (mix mode) and of the stage's output (long mode)."
    )
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--long-hour", action="store_true", help="Time a one-hour input through SeparationStage instead.")
    ap.add_argument("--hours", type=float, default=1.0, help="Input length in long mode.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = ModelSpec(name=args.model, checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size)
    result = run_long(args, spec) if args.long_hour else run_mixes(args, spec)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
