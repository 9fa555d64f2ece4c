"""Speaker attribution (curation.policy.diarization) measured on whole sources, as the pipeline diarizes them.

Sources:
1. AMI meeting excerpts with reference turns: pyannote's dev00/dev01 (RTTM) and lhotse's ES2011a excerpt (its
   cuts.json supervisions).
2. Conversations built from clips of different corpus speakers (silence-trimmed, taking turns 0.4 s apart): three
   two-speaker dialogues, the same through a telephone channel (300-3400 Hz at 8 kHz), a three- and a
   four-speaker conversation, two one-speaker sources (one also by telephone), and a dialogue where one speaker only
   answers with 0.6 s back-channels.

4. Overlap (--parts overlap): the second-voice pitch test (curation.policy.overlap) on the AMI excerpts against the
   RTTM's overlapped speech (10 ms frames where two or more reference speakers talk): precision and recall. Bar: both
   >= 80%. Beside it, the best the issue's other idea could do with this embedder, windows whose embeddings sit
   between two voices: 1 s windows every 0.1 s, each frame scored by its windows' similarity to the second-nearest
   of the reference speakers' centroids (taken from the reference's own one-speaker speech: an upper bound), and the
   best precision at 80% recall and F1 over every threshold.

3. Bandwidth (--parts bandwidth): every clean_en clip and the full-band music clips (first 20 s), low-passed at 4, 8,
   11 and 16 kHz, resampled to 44.1 kHz and dithered to 16 bits (curation.evaluation.bandwidth); the estimate's error
   against the cutoff, wherever the clip's own band reaches 1.1 x above it. Bar: every one within 10%.

Each source goes through the pipeline's segmentation stage (silero VAD + the segment policy of the default config),
every segment through `diarize_segment` (its own turns, and its windows' embeddings), and the source through
`diarize_source` (windows clustered over all its segments), exactly as the transcription stage and the
SourceSpeakers source stage do. The
figure is speaker-attributed time accuracy: the share of reference speech where exactly one person talks that is
attributed to the right speaker under the best one-to-one mapping, over the source (speech outside every kept segment
counts as missed). It is given with source-level ids, and with each segment's own ids (what diarizing each segment
alone gives: ids restart in every segment). Bar for the built conversations: the right number of speakers and >= 85%.

    .venv/bin/python -m scripts.bench_speakers --corpus /work/shared/corpus --out bench_out/speakers.json
    .venv/bin/python -m scripts.bench_speakers --corpus /work/shared/corpus --parts bandwidth
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from curation.evaluation.bandwidth import bandwidth_errors
from curation.evaluation.speakers import conversation, read_rttm, source_hypothesis, telephone
from curation.io.audio import decode_file, open_stream
from curation.io.keys import source_key
from curation.policy.diarization import (
    FRAME_S,
    DiarizationParams,
    SpeakerTurn,
    _unit,
    attribution_accuracy,
    diarization_params,
    diarize_segment,
    diarize_source,
    speaker_raster,
    speech_frames,
    speech_span,
)
from curation.policy.overlap import overlap_frames
from curation.row import Row, SourceInfo
from curation.stages.segmentation import SegmentationStage
from models import registry
from schemas.config import ModelSpec, SegmentationConfig
from schemas.sample import AudioFacts

SR = 16000
BAR = 0.85
BANDWIDTH_BAR = 0.10
OVERLAP_BAR = 0.80
CUTOFFS_HZ = (4000.0, 8000.0, 11000.0, 16000.0)
MUSIC_S = 20.0
# speaker -> clips; a clip named 'file:n' is cut into n equal turns
SPEAKERS = {
    "aew": [f"pyroomacoustics__cmu_arctic_us_aew_a000{i}.wav" for i in (1, 2, 3)],
    "axb": [f"pyroomacoustics__cmu_arctic_us_axb_a000{i}.wav" for i in (4, 5, 6)],
    "lj": ["speechbrain__LJ050-0131.wav:2", "lhotse__LJ002-0020.wav"],
    "ls1995": ["wenet__librispeech-1995-1837-0001.wav:3"],
    "ls2412": ["lhotse__2412-153948-0000.flac:3"],
    "ls1272": ["leopard__test.wav:2"],
}
BUILT = {
    "2 spk: cmu aew / cmu axb": ("aew", "axb"),
    "2 spk: ljspeech / librispeech 1995": ("lj", "ls1995"),
    "2 spk: librispeech 2412 / 1272": ("ls2412", "ls1272"),
    "3 spk: aew / ls1995 / ls1272": ("aew", "ls1995", "ls1272"),
    "4 spk: axb / lj / ls2412 / ls1272": ("axb", "lj", "ls2412", "ls1272"),
    # one voice over several clips: the count must stay 1 (splitting a speaker is as wrong as merging two)
    "1 spk: cmu aew": ("aew",),
    "1 spk: librispeech 2412": ("ls2412",),
}
TELEPHONE = (
    "2 spk: cmu aew / cmu axb",
    "2 spk: ljspeech / librispeech 1995",
    "2 spk: librispeech 2412 / 1272",
    "1 spk: cmu aew",
)
# back-channels: speaker 1 answers each of speaker 0's turns with the first BACKCHANNEL_S of one of its clips
BACKCHANNEL = {"2 spk + back-channels: lj / cmu axb": ("lj", "axb")}
BACKCHANNEL_S = 0.6


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


def ami_sources(corpus: Path) -> list[tuple[str, np.ndarray, list[SpeakerTurn]]]:
    out = []
    rttm = sorted(corpus.rglob("*debug.development.rttm"))
    for uri in ("dev00", "dev01"):
        audio = sorted(p for p in corpus.rglob(f"*{uri}.*") if p.suffix in (".wav", ".flac"))
        if audio and rttm:
            out.append((f"AMI {uri}", decode_file(str(audio[0]), SR).audio, read_rttm(rttm[0], uri)))
    cuts = sorted(corpus.rglob("*ami_cuts.json"))
    es = sorted(corpus.rglob("*ES2011a.Headset-0-40s-46s.wav"))
    if cuts and es:
        names: dict[str, int] = {}
        ref = [
            SpeakerTurn(names.setdefault(s["speaker"], len(names)), s["start"], s["start"] + s["duration"])
            for cut in json.loads(cuts[0].read_text())
            for s in cut["supervisions"]
        ]
        out.append(("AMI ES2011a 40-46 s", decode_file(str(es[0]), SR).audio, ref))
    return out


def segments_of(stage: SegmentationStage, wav: np.ndarray, name: str) -> list[tuple[float, np.ndarray]]:
    """(start_s, audio) of the kept segments of one whole input, as the segmentation stage cuts it."""
    row = Row(key=source_key(name), source_uri=name, input_index=0, unit=0)
    row.source = SourceInfo(audio=AudioFacts(sample_rate=SR, channels=1, duration_s=len(wav) / SR))
    row.set_waveform(wav, SR, SR)  # already at the analysis rate
    return [(r.sample.source.start_s, r.waveform()) for r in stage([row]) if r.live]


def measure(name, wav, ref, stage, embedder, params) -> dict:
    t0 = time.perf_counter()
    segs = segments_of(stage, wav, name)
    own = [diarize_segment(x, SR, embedder, params) for _, x in segs]
    source_turns, _ = diarize_source([v for _, v in own], params)
    starts = [t for t, _ in segs]
    hyp = source_hypothesis(starts, source_turns)
    per_segment = source_hypothesis(starts, [t for t, _ in own])
    found, true = len({t.speaker for t in hyp}), len({t.speaker for t in ref})
    return {
        "source": name,
        "duration_s": round(len(wav) / SR, 2),
        "segments": len(segs),
        "max_speakers_in_a_segment": max((len({t.speaker for t in seg}) for seg in source_turns), default=0),
        "speakers_true": true,
        "speakers_found": found,
        "accuracy": round(attribution_accuracy(ref, hyp), 4) if hyp else 0.0,
        "accuracy_per_segment_ids": round(attribution_accuracy(ref, per_segment), 4) if hyp else 0.0,
        "seconds": round(time.perf_counter() - t0, 2),
        "turns": [vars(t) for t in hyp],
    }


def measure_bandwidth(corpus: Path) -> dict:
    clips = {}
    for path in sorted(p for p in corpus.rglob("*") if p.suffix in (".wav", ".flac", ".ogg", ".mp3")):
        music = path.parent.name == "noise_music" and "librosa-data" in path.name
        if path.parent.name == "clean_en" or music:
            _, blocks, rs = open_stream(str(path), 192000, upsample=False)  # at the clip's own rate
            x = np.concatenate(list(blocks))
            clips[path.name] = (x[: int(MUSIC_S * rs.sr_out)] if music else x, rs.sr_out)
    rows = bandwidth_errors(clips, CUTOFFS_HZ)
    print(f"{'clip':60s} {'own_hz':>7s} {'cut_hz':>7s} {'est_hz':>7s} {'error':>7s}")
    for r in (r for r in rows if r["error"] is not None):  # the JSON also lists the clips too narrow to cut
        est = "" if r["estimate_hz"] is None else f"{r['estimate_hz']:7.0f}"
        err = "n/a" if r["error"] is None else f"{r['error']:+7.1%}"
        own = "-" if r["own_band_hz"] is None else f"{r['own_band_hz']:7.0f}"
        print(f"{r['clip'][:60]:60s} {own:>7s} {r['cutoff_hz']:7.0f} {est:>7s} {err:>7s}")
    measured = [r for r in rows if r["error"] is not None]
    by_cutoff = {}
    for cutoff in CUTOFFS_HZ:
        errs = [abs(r["error"]) for r in measured if r["cutoff_hz"] == cutoff]
        by_cutoff[str(int(cutoff))] = {"clips": len(errs), "max_abs_error": round(max(errs), 4) if errs else None}
        if errs:
            print(f"cutoff {cutoff:7.0f} Hz: {len(errs):2d} clips, max |error| {max(errs):.1%}")
    passes = bool(measured) and all(abs(r["error"]) <= BANDWIDTH_BAR for r in measured)
    return {"bar": BANDWIDTH_BAR, "by_cutoff": by_cutoff, "passes": passes, "clips": rows}


def talkers(ref: list[SpeakerTurn], n: int) -> np.ndarray:
    """(speakers, n) bool: who the reference says talks in each 10 ms frame."""
    return speaker_raster(ref, n, sorted({t.speaker for t in ref}))


def between_voices(wav: np.ndarray, ref: list[SpeakerTurn], embedder, window_s: float = 1.0) -> np.ndarray:
    """Per 10 ms frame, how much its windows resemble their second-nearest reference speaker (-1 outside speech):
    a window of two voices should resemble both. The centroids come from the reference's one-speaker speech."""
    frame = int(SR * FRAME_S)
    n, win = len(wav) // frame, int(round(window_s / FRAME_S))

    def embed(starts) -> np.ndarray:
        return _unit(embedder.embed([wav[a * frame : (a + win) * frame] for a in starts], SR))

    who = talkers(ref, n)
    alone = who & (who.sum(axis=0) == 1)
    cents = [
        _unit(embed([a for a in np.flatnonzero(mask)[::50] if mask[a : a + win].mean() > 0.9]).mean(axis=0))
        for mask in alone
    ]
    starts = np.arange(0, n - win, 10)
    sims = np.sort(embed(starts) @ np.stack(cents).T)
    total, count = np.zeros(n), np.zeros(n)
    for a, v in zip(starts, sims[:, -2]):
        total[a : a + win] += v
        count[a : a + win] += 1
    score = np.where(count > 0, total / np.maximum(count, 1), -1.0)
    return np.where(speech_frames(wav, SR)[:n], score, -1.0)


def best_thresholds(score: np.ndarray, truth: np.ndarray) -> dict:
    """Precision at >= 80% recall and the best F1 over every threshold on `score`."""
    order = np.argsort(-score)
    hits = np.cumsum(truth[order])
    precision, recall = hits / np.arange(1, len(order) + 1), hits / max(truth.sum(), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
    at_recall = precision[recall >= OVERLAP_BAR]
    return {
        "precision_at_80_recall": round(float(at_recall.max()) if at_recall.size else 0.0, 4),
        "best_f1": round(float(f1.max()), 4),
    }


def measure_overlap(corpus: Path, embedder) -> dict:
    found = true = hits = 0
    sources = {}
    scores, truths = [], []
    for name, wav, ref in ami_sources(corpus):
        flags = overlap_frames(wav, SR)
        overlapped = talkers(ref, len(flags)).sum(axis=0) >= 2
        if name.startswith("AMI dev"):  # the RTTM's sources (the ES2011a excerpt's reference has no overlap)
            scores.append(between_voices(wav, ref, embedder))
            truths.append(talkers(ref, len(scores[-1])).sum(axis=0) >= 2)
        sources[name] = {
            "flagged_s": round(flags.sum() * FRAME_S, 2),
            "overlap_s": round(overlapped.sum() * FRAME_S, 2),
        }
        found, true, hits = found + flags.sum(), true + overlapped.sum(), hits + (flags & overlapped).sum()
    precision, recall = (hits / found if found else 0.0), (hits / true if true else 0.0)
    print(
        f"overlap: {true * FRAME_S:.2f} s in the RTTM, {found * FRAME_S:.2f} s flagged: precision {precision:.1%}, recall {recall:.1%}"
    )
    bound = best_thresholds(np.concatenate(scores), np.concatenate(truths))
    print(
        f"between two voices (upper bound): precision at 80% recall {bound['precision_at_80_recall']:.1%}, "
        f"best F1 {bound['best_f1']:.1%}"
    )
    return {
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "between_voices_bound": bound,
        "sources": sources,
        "passes": bool(precision >= OVERLAP_BAR and recall >= OVERLAP_BAR),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data")
    ap.add_argument("--embedder", default="resemblyzer")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument(
        "--parts", nargs="+", choices=("speakers", "bandwidth", "overlap"), default=["speakers", "bandwidth", "overlap"]
    )
    args = ap.parse_args()
    results: dict = {}
    ok = True
    embedder, params = build_embedder(args) if {"overlap", "speakers"} & set(args.parts) else (None, None)
    if "bandwidth" in args.parts:
        results["bandwidth"] = measure_bandwidth(args.corpus)
        ok = results["bandwidth"]["passes"]
    if "overlap" in args.parts:
        results["overlap"] = measure_overlap(args.corpus, embedder)
        ok = ok and results["overlap"]["passes"]
    if "speakers" in args.parts:
        results["speakers"] = measure_speakers(args, embedder, params)
        ok = ok and all(r["passes"] is not False for r in results["speakers"]["sources"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


def build_embedder(args: argparse.Namespace):
    """The speaker embedder the arguments name, and its diarization parameters."""
    spec = ModelSpec(name=args.embedder, checkpoint=args.checkpoint, device=args.device, batch_size=16)
    return registry.build("speaker", spec), diarization_params(spec)


def measure_speakers(args: argparse.Namespace, embedder, params: DiarizationParams) -> dict:
    stage = SegmentationStage(SegmentationConfig())
    stage.setup()
    results = {"embedder": embedder.model_id, "params": vars(params), "bar": BAR, "sources": []}

    sources = ami_sources(args.corpus)
    clips = {spk: [c for item in items for c in turns_of(args.corpus, item)] for spk, items in SPEAKERS.items()}
    built = {name: [clips[s] for s in spks] for name, spks in BUILT.items()}
    for name, (talker, listener) in BACKCHANNEL.items():
        built[name] = [clips[talker], [x[: int(BACKCHANNEL_S * SR)] for x in clips[listener]]]
    for name, speakers in built.items():
        wav, ref = conversation(speakers, SR)
        sources.append((name, wav, ref))
        if name in TELEPHONE:
            sources.append((f"{name}, telephone", telephone(wav, SR), ref))

    print(f"{'source':44s} {'dur_s':>6s} {'segs':>4s} {'found':>5s} {'true':>4s} {'source ids':>10s} {'seg ids':>8s}")
    for name, wav, ref in sources:
        r = measure(name, wav, ref, stage, embedder, params)
        r["built"] = not name.startswith("AMI")
        r["passes"] = r["speakers_found"] == r["speakers_true"] and r["accuracy"] >= BAR if r["built"] else None
        results["sources"].append(r)
        print(
            f"{name:44s} {r['duration_s']:6.1f} {r['segments']:4d} {r['speakers_found']:5d} {r['speakers_true']:4d} "
            f"{r['accuracy']:10.1%} {r['accuracy_per_segment_ids']:8.1%}  {'' if r['passes'] is None else 'ok' if r['passes'] else 'NO'}"
        )
    for group, pick in (("AMI", lambda r: not r["built"]), ("built", lambda r: r["built"])):
        rs = [r for r in results["sources"] if pick(r)]
        if rs:
            w = np.array([r["duration_s"] for r in rs])
            acc = float(np.average([r["accuracy"] for r in rs], weights=w))
            seg = float(np.average([r["accuracy_per_segment_ids"] for r in rs], weights=w))
            results[f"{group}_accuracy"] = round(acc, 4)
            results[f"{group}_accuracy_per_segment_ids"] = round(seg, 4)
            print(f"{group + ' (duration-weighted)':44s} {'':6s} {'':4s} {'':5s} {'':4s} {acc:10.1%} {seg:8.1%}")
    return results


if __name__ == "__main__":
    sys.exit(main())
