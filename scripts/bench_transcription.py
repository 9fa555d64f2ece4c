"""The transcription stage alone, on a fixed subset of the curation benchmark: its CPU seconds and what it keeps.

    .venv/bin/python -m scripts.bench_transcription --files 8                      # capture (once), then time
    .venv/bin/python -m scripts.bench_transcription --files 8 --out bench_out/transcription.json
    py-spy record --native --format speedscope -o bench_out/transcription.speedscope.json -- \\
        .venv/bin/python -m scripts.bench_transcription --files 8                  # where the time goes

The first `--files` files of the benchmark set (scripts/bench_corpus.py, as `make bench` builds it) are run through
every stage before transcription once, by the sequential executor of the `local` profile, and the rows that reach
transcription are kept in bench_out/transcription_rows/FILES.pkl (rebuilt when the set's recipe changes). Each run
then builds the transcription stage of the same configuration (`--set` edits it: decoder settings, the speaker
model) and times it on those rows, process CPU seconds (all threads) around the stage calls, model loading apart,
with one torch thread by default (as a fused Ray actor, one per core, runs the stage): a shared, loaded machine changes wall time far more than CPU time. It prints the verdicts (kept, rejects by
reason) and a digest of every kept transcript, so two code versions can be compared on exactly the same rows.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

from jobs.config import add_overrides
from scripts.bench_corpus import build_set, plan_files

ROOT = Path(__file__).resolve().parent.parent


def speakers_digest(kept: list) -> str:
    """Digest of the kept rows' speaker turns and of the voices they carry to source-level diarization (the
    embeddings' bytes)."""
    h = hashlib.sha256()
    for r in kept:
        h.update(repr([(t.speaker, t.start_s, t.end_s) for t in r.sample.transcript.turns]).encode())
        voices = r.speakers.voices if r.speakers is not None else None
        if voices is not None:
            for a in (voices.speech, voices.windows, voices.embeddings, voices.phrases, voices.phrase_embeddings):
                h.update(a.tobytes())
    return h.hexdigest()[:16]


def capture(input_dir: Path, n_files: int, work: Path) -> list:
    """The rows that reach transcription for the first `n_files` files of the set, in order."""
    from curation.executor import SequentialExecutor
    from curation.run import IncompleteRunError, curate
    from jobs.config import curate_config
    from schemas.rejects import Stage

    subset = work / "input"
    subset.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in input_dir.iterdir() if p.name.startswith("bench_"))[:n_files]:
        link = subset / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    cfg = curate_config("local", direct={"input": str(subset), "output": str(work / "out")})
    captured: list = []

    class UpToTranscription(SequentialExecutor):
        """Runs the stages before transcription and keeps what they pass on; writes nothing."""

        def run(self, pipeline, rows, target, on_unit) -> None:
            stages = pipeline.models[: [s.name for s in pipeline.models].index(Stage.TRANSCRIPTION)]
            for stage in stages:
                stage.setup()
            for row in rows:
                for piece in self._decoded(pipeline, row):
                    batch = [piece]
                    for stage in stages:
                        batch = [
                            o
                            for k in range(0, len(batch), stage.batch_size)
                            for o in stage(batch[k : k + stage.batch_size])
                        ]
                    captured.extend(batch)

    try:
        curate(cfg, UpToTranscription())
    except IncompleteRunError:  # nothing was written, by design
        pass
    return captured


def run_stage(rows: list, overrides: list[str], threads: int) -> dict:
    import torch

    from curation.stages.pipeline import CurationPipeline
    from jobs.config import curate_config
    from schemas.rejects import Stage

    cfg = curate_config("local", direct={"input": ".", "output": "unused"}, overrides=overrides)
    (stage,) = [s for s in CurationPipeline.from_config(cfg).models if s.name == Stage.TRANSCRIPTION]
    torch.set_num_threads(threads)
    t = time.process_time()
    stage.setup()
    load_s = time.process_time() - t
    rows = copy.deepcopy(rows)
    live = [r for r in rows if r.live]
    audio_s = sum(r.n_samples / r.sample_rate for r in live)
    t, w = time.process_time(), time.perf_counter()
    out = [o for k in range(0, len(rows), stage.batch_size) for o in stage(rows[k : k + stage.batch_size])]
    cpu_s, wall_s = time.process_time() - t, time.perf_counter() - w
    verdicts = Counter(
        r.reject.reason.value if r.reject else "kept" for r in out if not r.reject or r.reject.stage == stage.name
    )
    kept = [r for r in out if r.live]
    texts = [f"{r.key}\t{r.sample.transcript.plain_text()}" for r in kept]
    return {
        "rows_in": len(live),
        "audio_s": round(audio_s, 2),
        "load_cpu_s": round(load_s, 2),
        "cpu_s": round(cpu_s, 2),
        "wall_s": round(wall_s, 2),
        "x_real_time_per_core": round(audio_s / cpu_s, 2),
        "verdicts": dict(sorted(verdicts.items())),
        "kept_transcripts_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16],
        "kept_keys_sha256": hashlib.sha256("\n".join(r.key for r in kept).encode()).hexdigest()[:16],
        "kept_speakers_sha256": speakers_digest(kept),
        "transcripts": texts,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=8, help="the first N files of the benchmark set (default 8)")
    p.add_argument("--hours", type=float, default=1.0, help="the benchmark set's size, as `make bench` builds it")
    p.add_argument("--input-dir", default="bench_out/input")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", type=int, default=None, help="only the first N captured rows (a smaller fixed subset)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: a fused Ray actor runs on one core)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    add_overrides(p)
    args = p.parse_args(argv)

    recipe = build_set(Path(args.input_dir), plan_files(args.hours, args.seed))
    work = ROOT / "bench_out" / "transcription_rows" / f"{recipe['hash'][:12]}_{args.files}"
    cache = work / "rows.pkl"
    if not cache.exists():
        t = time.perf_counter()
        rows = capture(Path(args.input_dir), args.files, work)
        cache.write_bytes(pickle.dumps(rows))
        print(f"captured {len(rows)} rows in {time.perf_counter() - t:.0f} s -> {cache}")
    rows = pickle.loads(cache.read_bytes())[: args.rows]
    result = run_stage(rows, args.overrides, args.threads)
    result |= {
        "files": args.files,
        "rows": args.rows,
        "threads": args.threads,
        "overrides": args.overrides,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "transcripts"}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
