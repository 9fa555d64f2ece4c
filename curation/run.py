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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import storage
from curation.io.ingest import list_inputs
from curation.io.plan import RunPlan, completed_units, load_plan
from curation.io.shards import SHARDS_DIR, UnitWriter, finalize
from curation.report import write_report
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


class Executor(Protocol):
    def prepare(self, pipeline: CurationPipeline) -> None:
        """Check (and start) what the run needs; raise before anything is written when it cannot run."""

    def run(
        self, pipeline: CurationPipeline, rows: list[Row], target: UnitTarget, on_unit: Callable[[dict], None]
    ) -> None:
        """Run the stages over `rows` until every unit of `target` is written; `on_unit` gets each unit's summary."""


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
    storage.remove_stale_temporaries(storage.join(cfg.output, SHARDS_DIR))
    done = completed_units(cfg.output, plan)
    todo_units = {u: n for u, n in plan.units.items() if u not in done}
    if on_plan is not None:
        on_plan(len(plan.units), len(done))
    todo_inputs = [i for i in plan.inputs if i["unit"] in todo_units]
    if todo_inputs:
        executor.run(
            pipeline, input_rows(todo_inputs), UnitTarget(cfg.output, todo_units, cfg.shards, pipeline.source), on_unit
        )

    missing = set(plan.units) - completed_units(cfg.output, plan)
    if missing:
        raise IncompleteRunError(
            f"{len(missing)} work units did not complete (e.g. {sorted(missing)[:5]}); run the same command again to resume"
        )
    summary, stats = finalize(cfg.output, plan)
    wall = time.time() - t0
    summary.update(
        resumed=resumed,
        units_skipped=len(done),
        wall_s=round(wall, 2),
        audio_hours_per_hour=round(summary["hours_in"] * 3600 / wall, 2) if wall > 0 else None,
        output=cfg.output,
    )
    summary["report"] = write_report(
        cfg.output, stats, summary, cfg.quality.thresholds if cfg.quality.enabled else {}, cfg.segmentation.min_s
    )
    return summary
