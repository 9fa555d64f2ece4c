"""The sequential baseline of the curation benchmark: the pipeline's own stage classes called one after the
other in one plain Python process, input by input, as single-node tools (e.g. Emilia-Pipe) run. No Ray.

decode -> separation -> segmentation -> quality -> transcription -> FLAC encode -> unit writer, per input,
with each model stage called on batches of its configured Ray batch size, so model calls have the same
sizes as in the Ray run. The same run plan, finalisation and report as `run_curation` frame it.

Every stage is timed (wall and process CPU seconds, model loading apart), and decoding and resampling are
counted per input, to check that no audio is decoded or resampled twice (`CallCounter`).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import soxr

from curation import decode as decode_module
from curation.batch import COLUMNS, PCM_WIDTH, Batch, concat, slices
from curation.decode import DecodeStage, input_rows
from curation.ingest import list_inputs
from curation.plan import load_or_create_plan
from curation.report import write_report
from curation.shards import UnitWriter, encode_audio, finalize
from pipelines.stages import decode_rate, model_stages, preflight
from schemas.config import CurateConfig

# Who may resample, and what: the source mixture once (in decode when the source is above the separator's
# rate, else in the separator), and the separated vocals once (the separator's output sink, to the output
# rate). Any other caller resamples audio again.
ALLOWED_RESAMPLERS = {"curation.audio": "mixture", "models.separator.base": "mixture", "models.separator.chunking": "vocals"}


class StageClock:
    """Wall and process-CPU seconds per stage (CPU of all threads: torch may use several)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextmanager
    def time(self, stage: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[stage] += time.perf_counter() - w
            self.cpu[stage] += time.process_time() - c
            self.calls[stage] += 1

    def iterate(self, stage: str, it: Iterator) -> Iterator:
        """Yield from a generator, timing only the generator's own work."""
        while True:
            with self.time(stage):
                item = next(it, None)
            if item is None:
                return
            yield item


class CallCounter:
    """Counts, while active, how often each input is opened for decoding and who resamples audio.

    soxr is the only resampler in the project (models.signal.resample, the decoder's and the separator's
    streams all use it), so wrapping soxr's two entry points sees every resampling; the caller's module
    name (past models.signal's helper) says which stage did it."""

    def __init__(self) -> None:
        self.opens: dict[str, int] = defaultdict(int)  # source path -> times opened for decoding
        self.resamples: dict[str, int] = defaultdict(int)  # calling module -> resampling calls/streams

    @contextmanager
    def active(self):
        real_open, real_resample, real_stream = decode_module.open_stream, soxr.resample, soxr.ResampleStream

        def open_stream(path, *args, **kwargs):
            self.opens[str(path)] += 1
            return real_open(path, *args, **kwargs)

        def count(real: Callable) -> Callable:
            def wrapper(*args, **kwargs):
                frame = sys._getframe(1)
                while frame.f_back is not None and frame.f_globals.get("__name__") == "models.signal":
                    frame = frame.f_back
                self.resamples[frame.f_globals.get("__name__", "?")] += 1
                return real(*args, **kwargs)

            return wrapper

        decode_module.open_stream, soxr.resample, soxr.ResampleStream = open_stream, count(real_resample), count(real_stream)
        try:
            yield self
        finally:
            decode_module.open_stream, soxr.resample, soxr.ResampleStream = real_open, real_resample, real_stream

    def check(self, inputs: int, pieces: int) -> dict:
        """The verdict: each input opened once; the mixture resampled at most once per input in decode and once
        per piece in the separator, the vocals at most once per piece; nothing else resampled."""
        others = {m: n for m, n in self.resamples.items() if m not in ALLOWED_RESAMPLERS}
        mixture = self.resamples.get("curation.audio", 0)
        in_separator = self.resamples.get("models.separator.base", 0)
        vocals = self.resamples.get("models.separator.chunking", 0)
        ok = (len(self.opens) == inputs and all(n == 1 for n in self.opens.values())
              and mixture <= inputs and in_separator <= pieces and vocals <= pieces and not others)
        return {
            "inputs": inputs,
            "pieces": pieces,
            "max_opens_per_input": max(self.opens.values(), default=0),
            "mixture_resample_streams": mixture,
            "mixture_resamples_in_separator": in_separator,
            "vocals_resample_streams": vocals,
            "other_resamples": others,
            "ok": ok,
        }


def _seconds(batch: Batch) -> float:
    return sum(len(p) / PCM_WIDTH / sr for p, sr, r in zip(batch["pcm"], batch["sample_rate"], batch["reject_json"]) if sr and not r)


def run_sequential(cfg: CurateConfig, counter: CallCounter | None = None, torch_threads: dict[str, int] | None = None) -> dict:
    """Curate cfg.input into cfg.output (a fresh folder) without Ray. Returns timings and the summary.

    `torch_threads`: torch's intra-op threads while a stage runs, by stage name (others: left as they are)."""
    import torch

    t0 = time.perf_counter()
    clock = StageClock()
    load_s: dict[str, float] = {}
    preflight(cfg)
    plan, _ = load_or_create_plan(cfg, lambda: list_inputs(cfg.input, cfg.extensions))
    decoder = DecodeStage(cfg.decode, *decode_rate(cfg))
    stages = []
    for st in model_stages(cfg):
        w = time.perf_counter()
        stages.append((st.name, st.factory(), st.resources.batch_size))
        load_s[st.name] = time.perf_counter() - w
    writer = UnitWriter(cfg.output, plan.units, cfg.shards)
    stage_audio_s: dict[str, float] = defaultdict(float)  # audio each stage received
    pieces = 0
    with counter.active() if counter is not None else nullcontext():
        for row in input_rows(plan.inputs):
            for batch in clock.iterate("decode", decoder({c: [row[c]] for c in COLUMNS})):
                pieces += 1
                for name, stage, size in stages:
                    if torch_threads and name in torch_threads:
                        torch.set_num_threads(torch_threads[name])
                    stage_audio_s[name] += _seconds(batch)
                    outs = []
                    for part in slices(batch, size):
                        with clock.time(name):
                            outs.append(stage(part))
                    batch = concat(outs)
                with clock.time("encode"):
                    batch = encode_audio(batch)
                with clock.time("write"):
                    writer(batch)
        with clock.time("finalize"):
            summary, samples, rejects = finalize(cfg.output, plan)
            write_report(cfg.output, samples, rejects, summary, cfg.quality.thresholds if cfg.quality.enabled else {})
    wall = time.perf_counter() - t0
    order = ["decode", *(n for n, _, _ in stages), "encode", "write", "finalize"]
    return {
        "wall_s": wall,
        "summary": summary,
        "pieces": pieces,
        "load_s": load_s,
        "stages": {s: {"wall_s": clock.wall[s], "cpu_s": clock.cpu[s], "calls": clock.calls[s], "audio_in_s": stage_audio_s.get(s)} for s in order},
        "checks": counter.check(len(plan.inputs), pieces) if counter is not None else None,
    }
