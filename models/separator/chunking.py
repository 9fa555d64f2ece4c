"""Separating inputs of any length with bounded memory: overlapping chunks, cross-faded back together.

Each input is cut into chunks of `chunk` samples that overlap their neighbours by `overlap` samples.
Chunks are batched by length (most are full length), never with another input's (a batched model
may round differently with the batch's content, and an input's result must not depend on which inputs share
its call), unless the model buckets lengths: then the chunks of one bucket share calls across inputs (a model that
buckets gives each chunk the same result in any batch), at most one full chunk's bucket per call, so memory stays
that of one full chunk. The outputs are cross-faded with raised-cosine ramps whose sum is 1, so an identity
separation gives the input back. Finished samples
stream into a sink per stem (optionally resampled on the fly), so no full-length intermediate is held
beyond the outputs themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from models.signal import resample_stream

# chunks of one bucket, float32 -> each one's (stems, samples) float32
SeparateBatch = Callable[[list[np.ndarray]], list[np.ndarray]]
# a chunk's length -> the length the model computes it at (non-decreasing): chunks of one bucket share calls
Bucket = Callable[[int], int]


def chunk_spans(n: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) of each chunk. All but the last are `chunk` long; the last is longer than `overlap`,
    so every chunk overlaps only its direct neighbours."""
    if not 0 <= 2 * overlap < chunk:
        raise ValueError(f"overlap ({overlap}) must be less than half of chunk ({chunk})")
    if n == 0:
        return []
    if n <= chunk:
        return [(0, n)]
    hop = chunk - overlap
    count = math.ceil((n - overlap) / hop)
    return [(k * hop, min(k * hop + chunk, n)) for k in range(count)]


def fade_in(overlap: int) -> np.ndarray:
    """Raised-cosine ramp r with r[i] + r[overlap-1-i] == 1: a fade-in plus the mirrored fade-out is flat."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)).astype(np.float32)


class StemSink:
    """Collects one stem of one input, in order, resampled from `rate_in` to `rate_out` as it streams in.
    The output is as long as soxr makes it, hence as long as models.signal.resample would."""

    def __init__(self, n_in: int, rate_in: int, rate_out: int):
        self._buf = np.zeros(
            n_in if rate_in == rate_out else math.ceil(n_in * rate_out / rate_in) + 1, dtype=np.float32
        )
        self._pos = 0
        self._stream = resample_stream(rate_in, rate_out)

    @property
    def out(self) -> np.ndarray:
        return self._buf[: self._pos]

    def write(self, block: np.ndarray, last: bool = False) -> None:
        if self._stream is not None:
            block = self._stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)
        take = min(len(block), len(self._buf) - self._pos)
        self._buf[self._pos : self._pos + take] = block[:take]
        self._pos += take


class _Assembler:
    """Cross-fades the chunk outputs of one input, which must arrive in order."""

    def __init__(self, spans: list[tuple[int, int]], overlap: int, ramp: np.ndarray, sinks: Sequence[StemSink | None]):
        self.spans, self.overlap, self.ramp, self.sinks = spans, overlap, ramp, sinks
        self.next = 0
        self.pending: np.ndarray | None = None  # faded-out tail of the previous chunk, (stems, overlap)

    def add(self, k: int, y: np.ndarray) -> None:
        assert k == self.next, "chunks of one input must be assembled in order"
        last = k == len(self.spans) - 1
        o = self.overlap
        head = y[:, :o] * self.ramp + self.pending if k > 0 else y[:, :0]
        body = y[:, (o if k > 0 else 0) : (y.shape[1] if last else y.shape[1] - o)]
        self.pending = None if last else y[:, y.shape[1] - o :] * self.ramp[::-1]
        for s, sink in enumerate(self.sinks):
            if sink is not None:
                sink.write(head[s])
                sink.write(body[s], last=last)
        self.next += 1


def separate_in_chunks(
    waveforms: Sequence[np.ndarray],
    separate_batch: SeparateBatch,
    chunk: int,
    overlap: int,
    batch_size: int,
    sinks: Sequence[Sequence[StemSink | None]],
    bucket: Bucket | None = None,
) -> None:
    """Run `separate_batch` over overlapping chunks of every waveform and stream the cross-faded stems
    into `sinks[input][stem]` (None = stem not wanted). Without `bucket`, chunks of equal length of one input share a
    model call; with it, chunks of one bucket from any input do, up to `batch_size` of them and one full chunk's
    bucket in all."""
    ramp = fade_in(overlap)
    plans = [chunk_spans(len(x), chunk, overlap) for x in waveforms]
    assemblers = [_Assembler(spans, overlap, ramp, s) for spans, s in zip(plans, sinks)]
    jobs = [(i, k, a, b) for i, spans in enumerate(plans) for k, (a, b) in enumerate(spans)]

    def share(job: tuple[int, int, int, int]) -> int | tuple[int, int]:  # jobs that may share a call
        _, _, a, b = job
        return bucket(b - a) if bucket else (job[0], b - a)

    # Either way an input's chunks keep their order: all but its last are full length, and buckets grow with length.
    # Without buckets: by input, full chunks first; with them: largest bucket first, then by input.
    jobs.sort(key=lambda j: (-share(j), j[0], j[1]) if bucket else (j[0], j[2] - j[3]))
    start = 0
    while start < len(jobs):
        limit = batch_size if bucket is None else max(1, min(batch_size, bucket(chunk) // share(jobs[start])))
        stop = start + 1
        while stop < len(jobs) and stop - start < limit and share(jobs[stop]) == share(jobs[start]):
            stop += 1
        group = jobs[start:stop]
        ys = separate_batch([waveforms[i][a:b].astype(np.float32, copy=False) for i, _, a, b in group])
        for (i, k, _, _), yi in zip(group, ys):
            assemblers[i].add(k, yi)
        start = stop
