"""The stage contract every curation step follows, whatever runs it (a Ray Data actor or task, or the sequential
executor in one process).

A stage declares the Row fields it reads and writes and the resources it needs; `setup()` loads its models once
per process; `process_batch(rows)` returns the rows that follow (a row may become several, e.g. at segmentation).
Rows rejected upstream pass through untouched. How a failure on one row is handled is the error policy
`on_error`: 'reject' (the default) turns it into a reject row with the error as detail, 'raise' lets it propagate
(to debug a stage, as webdataset's `handler=reraise_exception`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal, TypeVar

import numpy as np

from curation.row import Row
from models import registry
from schemas.config import ModelSpec, Resources
from schemas.rejects import RejectReason, Stage

OnError = Literal["reject", "raise"]
R = TypeVar("R")


class CurationStage(ABC):
    name: ClassVar[Stage]
    reads: ClassVar[tuple[str, ...]]  # Row fields (or Sample fields, as 'sample.x') this stage uses
    writes: ClassVar[tuple[str, ...]]  # ... and those it sets
    uses_models: ClassVar[bool] = True  # model stages run in actors (models load once); the others in tasks

    def __init__(self, resources: Resources, on_error: OnError = "reject"):
        self.resources = resources
        self.on_error = on_error

    @property
    def batch_size(self) -> int:
        return self.resources.batch_size

    def setup(self) -> None:  # noqa: B027 (optional: a stage without models has nothing to load)
        """Load models; called once per process before the first batch."""

    @abstractmethod
    def process_batch(self, rows: list[Row]) -> list[Row]: ...

    def __call__(self, rows: list[Row]) -> list[Row]:
        return self.process_batch(rows)

    def fail(self, row: Row, reason: RejectReason, exc: BaseException) -> None:
        """Apply the error policy to one row's failure."""
        if self.on_error == "raise":
            raise exc
        row.rejected(self.name, reason, f"{type(exc).__name__}: {exc}")

    def call_model(
        self,
        rows: Sequence[Row],
        call: Callable[[list[np.ndarray], int], list[R]],
        reason: RejectReason,
        full_band: bool = False,
    ) -> list[tuple[Row, R]]:
        """`call(waveforms, sample_rate)` on the given live rows' analysis copies (or, with `full_band`, their full-band
        audio), once per sample rate present. When a call raises, its rows are retried one at a time, so only the row
        that breaks it fails (with `reason`, per `on_error`). Returns (row, result) for the rows that succeeded, in
        input order."""

        def wave(r: Row) -> np.ndarray:
            return r.waveform() if full_band else r.analysis_waveform()

        by_rate: dict[int, list[Row]] = {}
        for row in rows:
            by_rate.setdefault(row.sample_rate if full_band else row.analysis_rate, []).append(row)
        results: dict[int, R] = {}
        for rate, group in by_rate.items():
            try:
                outputs = call([wave(r) for r in group], rate)
                if len(outputs) != len(group):
                    raise RuntimeError(f"model returned {len(outputs)} results for {len(group)} inputs")
                results.update((id(r), out) for r, out in zip(group, outputs))
            except Exception:
                if self.on_error == "raise" and len(group) == 1:
                    raise
                for r in group:
                    try:
                        results[id(r)] = call([wave(r)], rate)[0]
                    except Exception as exc:  # a bad row is a reject, never a crash
                        self.fail(r, reason, exc)
        return [(r, results[id(r)]) for r in rows if id(r) in results]


_SHARED: dict[tuple, object] = {}


def shared_model(family: str, spec: ModelSpec, setting: str, **kwargs):
    """The model `spec` builds, once per process: two stages of one fused actor that run the same model (the separation
    gate and the quality stage both score quality) hold it once. Model wrappers keep no state between calls."""
    key = (family, spec.model_dump_json(), tuple(sorted(kwargs.items())))
    if key not in _SHARED:
        _SHARED[key] = registry.build(family, spec, setting, **kwargs)
    return _SHARED[key]
