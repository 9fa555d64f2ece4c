"""The sequential baseline of the curation benchmark: the pipeline's own stage objects run by the sequential
executor (curation.executor) in one plain Python process, input by input, as single-node tools (e.g. Emilia-Pipe)
run. No Ray. The same plan, finalisation and report frame it (curation.run.curate).

Every stage is timed through the executor's hooks (wall and process CPU seconds; model loading apart), and every
resampling is counted through models.signal's listeners, to check that no audio is resampled twice
(`CallCounter`). Each input is decoded by one stream by construction of the executor.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

from curation.executor import SequentialExecutor
from curation.row import Row
from curation.run import curate
from models.signal import RESAMPLE_LISTENERS
from schemas.config import CurateConfig

# Who may resample, and what: the source mixture once (in decode when the source is above decode.max_output_rate,
# then in the separator, to its rate), the separated vocals once (the separator's output sink, when the output rate
# is not its own), and the analysis copy once per audio made (curation.row: in decode, or of the vocals). Any other
# caller resamples audio again.
ALLOWED_RESAMPLERS = {
    "curation.io.audio": "mixture",
    "models.separator.base": "mixture",
    "models.separator.chunking": "vocals",
    "curation.row": "analysis",
}


class StageClock:
    """The executor hook: wall and process-CPU seconds per stage (CPU of all threads: torch may use several), the
    audio each stage received, and torch's intra-op threads per stage (`threads`, by stage name)."""

    def __init__(self, threads: dict[str, int] | None = None) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.audio_in_s: dict[str, float] = defaultdict(float)
        self.rows_in: dict[str, int] = defaultdict(int)
        self.threads = threads or {}

    @contextlib.contextmanager
    def __call__(self, stage: str, rows: list[Row]):
        if stage in self.threads:
            import torch

            torch.set_num_threads(self.threads[stage])
        self.audio_in_s[stage] += sum(r.n_samples / r.sample_rate for r in rows if r.live and r.sample_rate)
        self.rows_in[stage] += sum(r.live for r in rows)
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[stage] += time.perf_counter() - w
            self.cpu[stage] += time.process_time() - c
            self.calls[stage] += 1


class CallCounter:
    """Counts, while active, which code resamples audio (the caller's module, past models.signal's helpers)."""

    def __init__(self) -> None:
        self.resamples: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def active(self):
        listener = lambda module: self.resamples.__setitem__(module, self.resamples[module] + 1)  # noqa: E731
        RESAMPLE_LISTENERS.append(listener)
        try:
            yield self
        finally:
            RESAMPLE_LISTENERS.remove(listener)

    def check(self, inputs: int, pieces: int, separated: int) -> dict:
        """The verdict: the mixture resampled at most once per input in decode and once per row the separator
        received (`separated`: pieces, or utterances when gated) in the separator, the vocals at most once per such
        row, the analysis copy at most once per piece and per separated row; nothing else resampled."""
        others = {m: n for m, n in self.resamples.items() if m not in ALLOWED_RESAMPLERS}
        mixture = self.resamples.get("curation.io.audio", 0)
        in_separator = self.resamples.get("models.separator.base", 0)
        vocals = self.resamples.get("models.separator.chunking", 0)
        analysis = self.resamples.get("curation.row", 0)
        return {
            "inputs": inputs,
            "pieces": pieces,
            "separated": separated,
            "mixture_resample_streams": mixture,
            "mixture_resamples_in_separator": in_separator,
            "vocals_resample_streams": vocals,
            "analysis_copies": analysis,
            "other_resamples": others,
            "ok": mixture <= inputs
            and in_separator <= separated
            and vocals <= separated
            and analysis <= pieces + separated
            and not others,
        }


def run_sequential(
    cfg: CurateConfig, counter: CallCounter | None = None, torch_threads: dict[str, int] | None = None
) -> dict:
    """Curate cfg.input into cfg.output (a fresh folder) without Ray. Returns timings and the summary."""
    clock = StageClock(torch_threads)
    t0 = time.perf_counter()
    with counter.active() if counter is not None else contextlib.nullcontext():
        summary = curate(cfg, SequentialExecutor(hooks=clock))
    wall = time.perf_counter() - t0
    # decode's hook runs once per piece yielded and once more to find each input's end
    pieces = clock.calls["decode"] - summary["inputs"]
    stages = [s for s in clock.calls if not s.endswith(".setup")]
    return {
        "wall_s": wall,
        "summary": summary,
        "pieces": pieces,
        "load_s": {s.removesuffix(".setup"): clock.wall[s] for s in clock.calls if s.endswith(".setup")},
        "stages": {
            s: {
                "wall_s": clock.wall[s],
                "cpu_s": clock.cpu[s],
                "calls": clock.calls[s],
                "audio_in_s": clock.audio_in_s.get(s),
            }
            for s in stages
        },
        "checks": counter.check(summary["inputs"], pieces, clock.rows_in.get("separation", 0))
        if counter is not None
        else None,
    }
