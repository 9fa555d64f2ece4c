"""The separator interface every implementation shares: mono in, vocals and residual out, any length."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from models.separator.chunking import StemSink, chunk_spans, separate_in_chunks
from models.signal import resample
from schemas.config import ModelSpec


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


class Separated(NamedTuple):
    """Both stems of one input, each as long as the input and at its rate."""

    vocals: np.ndarray
    residual: np.ndarray


class Separator(ABC):
    """Splits mono audio into vocals and the rest, in overlapping chunks of `chunk_s` seconds so memory
    stays bounded whatever the duration. Subclasses set `model_id`, `sample_rate` (native), `batch_size`
    and implement `_separate_batch` on chunks at the native rate: of equal length, or, where the subclass defines
    `bucket`, of one bucket, from any inputs (it then gives a chunk the same result in any batch)."""

    model_id: str
    sample_rate: int
    batch_size: int
    bucket: Callable[[int], int] | None = None  # chunk length -> the length it is computed at

    def __init__(self, chunk_s: float, overlap_s: float):
        self.chunk_s, self.overlap_s = chunk_s, overlap_s
        self.chunk = round(chunk_s * self.sample_rate)
        self.overlap = round(overlap_s * self.sample_rate)
        chunk_spans(0, self.chunk, self.overlap)  # validates overlap < chunk / 2

    @classmethod
    def from_spec(cls, spec: ModelSpec, chunk_s: float, overlap_s: float) -> Separator:
        return cls(spec, chunk_s, overlap_s)

    @abstractmethod
    def _separate_batch(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """float32 chunks at the native rate -> each one's (2, samples): vocals, residual."""

    def separate(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[Separated]:
        sinks = self._run(waveforms, sample_rate, sample_rate, want_residual=True)
        # Off the native rate, the round trip through it may end a sample off: give back the input's length.
        return [Separated(_fit(v.out, len(x)), _fit(r.out, len(x))) for x, (v, r) in zip(waveforms, sinks)]

    def vocals(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, output_rate: int | None = None
    ) -> list[np.ndarray]:
        """Vocals only, at `output_rate` (default: the input rate), resampled while they stream out of the
        chunks: a long input never has a second full-length copy at the native rate."""
        sinks = self._run(waveforms, sample_rate, output_rate or sample_rate, want_residual=False)
        return [v.out for v, _ in sinks]

    def _run(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, output_rate: int, want_residual: bool
    ) -> list[list[StemSink | None]]:
        for x in waveforms:
            if np.ndim(x) != 1:
                raise ValueError(f"{self.model_id}: expected mono waveforms (1-D), got shape {np.shape(x)}")
        native = [resample(np.asarray(x, dtype=np.float32), sample_rate, self.sample_rate) for x in waveforms]
        sinks = [
            [StemSink(len(x), self.sample_rate, output_rate) if want else None for want in (True, want_residual)]
            for x in native
        ]
        separate_in_chunks(native, self._separate_batch, self.chunk, self.overlap, self.batch_size, sinks, self.bucket)
        return sinks
