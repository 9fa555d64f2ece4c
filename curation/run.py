"""One curation run, whatever executes its stages: start-up checks, the run plan, resume, the executor, then
index, manifest, rejects and the report from the completion records.

Nothing is written before the run can start: every model and threshold is checked, the inputs are listed and the
executor has checked its resources before the plan is saved (a failed start leaves no plan that would refuse the
corrected rerun). An executor (`Executor`) sets itself up (`prepare`), then runs the pipeline's stages over the
input rows still to do and has each work unit written (`UnitTarget`): `curation.executor.SequentialExecutor` in
this process, `pipelines.curate.RayExecutor` on Ray Data with writers on the worker nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import storage
from curation.io.ingest import list_inputs
from curation.io.plan import RunPlan, completed_units, load_plan, unit_inputs
from curation.io.shards import SHARDS_DIR, UnitWriter
from curation.report.stats import RunStats
from curation.row import Row
from curation.stages.decode import input_rows
from curation.stages.pipeline import CurationPipeline, preflight
from curation.stages.source import SourceStage
from schemas.config import CurateConfig, ShardConfig


class IncompleteRunError(RuntimeError):
    pass


@dataclass(frozen=True)
class UnitTarget:
    """Where and how the units still to do are written."""

    output: str
    units: dict[int, int]  # unit -> number of inputs
    shards: ShardConfig
    source_stages: Sequence[SourceStage]

    def writer(self, units: dict[int, int] | None = None) -> UnitWriter:
        return UnitWriter(self.output, self.units if units is None else units, self.shards, self.source_stages)


@dataclass(frozen=True)
class PlannedInputs:
    """The inputs of the units still to do, read from the stored plan a unit at a time (where they are decoded)."""

    output: str
    plan: RunPlan
    units: tuple[int, ...]

    def unit_rows(self, unit: int) -> list[Row]:
        return input_rows(unit_inputs(self.output, self.plan, unit))

    def __iter__(self) -> Iterator[Row]:
        for unit in self.units:
            yield from self.unit_rows(unit)


class Executor(Protocol):
    def prepare(self, pipeline: CurationPipeline) -> None:
        """Check (and start) what the run needs; raise before anything is written when it cannot run."""

    def run(
        self, pipeline: CurationPipeline, rows: Iterable[Row], target: UnitTarget, on_unit: Callable[[dict], None]
    ) -> None:
        """Run the stages over `rows` (a PlannedInputs from `curate`) until every unit of `target` is written;
        `on_unit` gets each unit's summary."""

    def finalize(self, output: str, plan: RunPlan) -> tuple[dict, RunStats]:
        """Index, manifest and rejects from the completion records (curation.io.shards.finalize), wherever the
        executor runs it."""


def curate(
    cfg: CurateConfig, executor: Executor, on_unit: Callable[[dict], None] = lambda summary: None, on_plan=None
) -> dict:
    """Run (or resume) a curation job; returns the summary, also in OUTPUT/report/summary.json. `on_unit` sees each
    unit's summary as it is written; `on_plan(total_units, done_units)` is told the plan first."""
    t0 = time.time()
    preflight(cfg)
    pipeline = CurationPipeline.from_config(cfg)
    plan = load_plan(cfg)
    resumed = plan is not None
    if plan is None:
        plan = RunPlan.create(list_inputs(cfg.input, cfg.extensions), cfg)
    executor.prepare(pipeline)
    if not resumed:
        plan.save(cfg.output)
        plan.inputs = []  # from here on each unit's inputs are read from the stored plan, where they are decoded
    storage.remove_stale_temporaries(storage.join(cfg.output, SHARDS_DIR))
    done = completed_units(cfg.output) & set(plan.units)
    todo_units = {u: n for u, n in plan.units.items() if u not in done}
    if on_plan is not None:
        on_plan(len(plan.units), len(done))
    if todo_units:
        inputs = PlannedInputs(cfg.output, plan, tuple(sorted(todo_units)))
        executor.run(pipeline, inputs, UnitTarget(cfg.output, todo_units, cfg.shards, pipeline.source), on_unit)

    missing = set(plan.units) - completed_units(cfg.output)
    if missing:
        raise IncompleteRunError(
            f"{len(missing)} work units did not complete (e.g. {sorted(missing)[:5]}); run the same command again to resume"
        )
    t_finalize = time.time()
    summary, stats = executor.finalize(cfg.output, plan)
    wall = time.time() - t0
    summary.update(
        finalize_s=round(time.time() - t_finalize, 2),
        resumed=resumed,
        units_skipped=len(done),
        wall_s=round(wall, 2),
        audio_hours_per_hour=round(summary["hours_in"] * 3600 / wall, 2) if wall > 0 else None,
        output=cfg.output,
    )
    # here, not at the top: the stage workers import this module, and the report's matplotlib is ~28 MB a process
    from curation.report.write import write_report

    quality = cfg.quality if cfg.quality.enabled else None
    summary["report"] = write_report(
        cfg.output,
        stats,
        summary,
        quality.thresholds if quality else {},
        cfg.segmentation.min_s,
        quality.min_bandwidth_hz if quality else None,
    )
    return summary
