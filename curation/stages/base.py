"""The stage contract every curation step follows, whatever runs it (a Ray Data actor or task, the unit writer, or the
sequential executor in one process).

A stage's name, config key, model family and the Row fields it reads and writes are declared once, in
`curation.stages.pipeline.STAGES`; `setup()` loads its models once per process; `process_batch(rows)` takes the live
rows (rejected rows pass through untouched, and a stage that needs audio rejects a row without it, here, before) and
returns the rows that follow (a row may become several, e.g. at segmentation). Every failure goes through one path,
`fail`: an infrastructure error, or too many failures (curation/stages/failure.py), stops the run; any other
failure of one row is handled by the error policy `on_error`: 'reject' (the default) turns it into a reject row
with the error as detail, 'raise' lets it propagate (to debug a stage, as webdataset's `handler=reraise_exception`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import numpy as np

from curation.row import Row
from curation.stages.failure import Breaker, is_infrastructure
from models import registry
from schemas.config import FailureConfig, ModelSpec, Resources
from schemas.rejects import RejectReason, Stage

if TYPE_CHECKING:
    from curation.stages.pipeline import StageDecl

OnError = Literal["reject", "raise"]
R = TypeVar("R")


class GuardedStage:
    """What every stage shares, row stages and source stages alike: its name, and one failure path."""

    name: ClassVar[Stage]
    on_error: OnError = "reject"
    failure: FailureConfig = FailureConfig()  # the run's, set where the pipeline is composed
    _breaker: Breaker | None = None
    decl_index: int | None = None  # which STAGES entry built it (separation has two placements)

    @property
    def decl(self) -> StageDecl:
        """This stage's entry in STAGES (set where the pipeline is composed; else the first entry of its class)."""
        from curation.stages.pipeline import STAGES, declaration

        return STAGES[self.decl_index] if self.decl_index is not None else declaration(type(self))

    @property
    def breaker(self) -> Breaker:
        """This process's count of the stage's outcomes (a stage object is shipped to each actor before any use)."""
        if self._breaker is None:
            self._breaker = Breaker(self.name.value, self.failure)
        return self._breaker

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_breaker"}

    def fail(self, row: Row, reason: RejectReason, exc: BaseException, rows: int = 1) -> None:
        """One row's failure: the run's (raises StageFailure), else a reject or a raise per `on_error`."""
        self.breaker.failure(exc, rows)
        if self.on_error == "raise":
            raise exc
        row.rejected(self.name, reason, f"{type(exc).__name__}: {exc}")


class CurationStage(GuardedStage, ABC):
    empty_audio: ClassVar[RejectReason | None] = None  # a live row without audio is rejected so before process_batch

    def __init__(self, resources: Resources, on_error: OnError = "reject"):
        self.resources = resources
        self.on_error = on_error

    @property
    def batch_size(self) -> int:
        return self.resources.batch_size

    def setup(self) -> None:  # noqa: B027 (optional: a stage without models has nothing to load)
        """Load models; called once per process before the first batch."""

    @abstractmethod
    def process_batch(self, rows: list[Row]) -> list[Row]:
        """Live rows in; the rows that follow out."""

    def __call__(self, rows: list[Row]) -> list[Row]:
        live = []
        for row in rows:
            if row.live and self.empty_audio is not None and not row.audio:
                row.rejected(self.name, self.empty_audio, "empty audio")
            elif row.live:
                live.append(row)
        if not live:
            return rows
        out = self.process_batch(live)
        if len(out) == len(live) and all(a is b for a, b in zip(out, live)):
            return rows  # rows changed in place: the batch keeps its order
        return [r for r in rows if not r.live] + out

    def call_model(
        self,
        rows: Sequence[Row],
        call: Callable[[list[np.ndarray], int], list[R]],
        reason: RejectReason,
        full_band: bool = False,
    ) -> list[tuple[Row, R]]:
        """`call(waveforms, sample_rate)` on the given live rows' analysis copies (or, with `full_band`, their full-band
        audio), once per sample rate present. When a call raises an infrastructure error the stage stops; on any other
        error its rows are retried one at a time, so only the row that breaks it fails (with `reason`, via `fail`).
        Returns (row, result) for the rows that succeeded, in input order."""

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
                self.breaker.ok(len(group))
            except Exception as exc:
                if is_infrastructure(exc):
                    self.breaker.failure(exc, len(group))  # raises: retrying row by row cannot help
                if self.on_error == "raise" and len(group) == 1:
                    raise
                for r in group:
                    try:
                        results[id(r)] = call([wave(r)], rate)[0]
                        self.breaker.ok()
                    except Exception as row_exc:  # a bad row is a reject, unless it is the run's failure
                        self.fail(r, reason, row_exc)
        return [(r, results[id(r)]) for r in rows if id(r) in results]


_SHARED: dict[tuple, object] = {}


def shared_model(family: str, spec: ModelSpec, setting: str, **kwargs):
    """The model `spec` builds, once per process: two stages of one fused actor that run the same model (the separation
    gate and the quality stage both score quality) hold it once. Model wrappers keep no state between calls."""
    key = (family, spec.model_dump_json(), tuple(sorted(kwargs.items())))
    if key not in _SHARED:
        _SHARED[key] = registry.build(family, spec, setting, **kwargs)
    return _SHARED[key]
