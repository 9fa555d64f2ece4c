"""One curation run, whatever executes its stages: start-up checks, the run plan, resume, the executor, then
index, manifest, rejects and the report from the completion records.

An executor (`Executor`) takes the pipeline's stages, the input rows still to do and a `UnitWriter`, and returns
when every row has reached the writer: `curation.executor.SequentialExecutor` in this process,
`pipelines.curate.RayExecutor` on Ray Data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from curation.io import storage
from curation.io.ingest import list_inputs
from curation.io.plan import completed_units, load_or_create_plan
from curation.io.shards import SHARDS_DIR, UnitWriter, finalize
from curation.report import write_report
from curation.row import Row
from curation.stages.decode import input_rows
from curation.stages.pipeline import CurationPipeline, preflight
from schemas.config import CurateConfig


class IncompleteRunError(RuntimeError):
    pass


class Executor(Protocol):
    def run(
        self, pipeline: CurationPipeline, rows: list[Row], writer: UnitWriter, on_unit: Callable[[dict], None]
    ) -> None: ...


def curate(
    cfg: CurateConfig, executor: Executor, on_unit: Callable[[dict], None] = lambda record: None, on_plan=None
) -> dict:
    """Run (or resume) a curation job; returns the summary, also in OUTPUT/report/summary.json. `on_unit` sees each
    unit's completion record as it is written; `on_plan(total_units, done_units)` is told the plan first."""
    t0 = time.time()
    preflight(cfg)
    pipeline = CurationPipeline.from_config(cfg)
    plan, resumed = load_or_create_plan(cfg, lambda: list_inputs(cfg.input, cfg.extensions))
    storage.remove_stale_temporaries(storage.join(cfg.output, SHARDS_DIR))
    done = completed_units(cfg.output, plan)
    todo_units = {u: n for u, n in plan.units.items() if u not in done}
    if on_plan is not None:
        on_plan(len(plan.units), len(done))
    todo_inputs = [i for i in plan.inputs if i["unit"] in todo_units]
    if todo_inputs:
        executor.run(pipeline, input_rows(todo_inputs), UnitWriter(cfg.output, todo_units, cfg.shards), on_unit)

    missing = set(plan.units) - completed_units(cfg.output, plan)
    if missing:
        raise IncompleteRunError(
            f"{len(missing)} work units did not complete (e.g. {sorted(missing)[:5]}); run the same command again to resume"
        )
    summary, samples, rejects = finalize(cfg.output, plan)
    wall = time.time() - t0
    summary.update(
        resumed=resumed,
        units_skipped=len(done),
        wall_s=round(wall, 2),
        audio_hours_per_hour=round(summary["hours_in"] * 3600 / wall, 2) if wall > 0 else None,
        output=cfg.output,
    )
    summary["report"] = write_report(
        cfg.output, samples, rejects, summary, cfg.quality.thresholds if cfg.quality.enabled else {}
    )
    return summary
