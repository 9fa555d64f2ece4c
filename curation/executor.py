"""The sequential executor: every stage in this one process, one input piece at a time, as single-node tools run.

The same stage objects as on Ray; each stage is called on slices of its own batch size (a piece explodes into
many segments at segmentation). `hooks(stage_name, rows)` wraps every stage call (the benchmark times stages so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager

from curation.io.plan import RunPlan
from curation.io.shards import finalize, unit_summary
from curation.report.stats import RunStats
from curation.row import Row
from curation.run import UnitTarget
from curation.stages.pipeline import CurationPipeline

StageHook = Callable[[str, list[Row]], ContextManager]


def _no_hook(name: str, rows: list[Row]) -> ContextManager:
    return contextlib.nullcontext()


class SequentialExecutor:
    def __init__(self, hooks: StageHook = _no_hook):
        self.hooks = hooks

    def _decoded(self, pipeline: CurationPipeline, row: Row) -> Iterator[Row]:
        pieces = pipeline.decode.stream([row])
        while True:
            with self.hooks(pipeline.decode.name, [row]):
                piece = next(pieces, None)
            if piece is None:
                return
            yield piece

    def prepare(self, pipeline: CurationPipeline) -> None:
        """Everything runs here: nothing to check beyond the run's own start-up checks."""

    def finalize(self, output: str, plan: RunPlan) -> tuple[dict, RunStats]:
        return finalize(output, plan)

    def run(
        self, pipeline: CurationPipeline, rows: Iterable[Row], target: UnitTarget, on_unit: Callable[[dict], None]
    ) -> None:
        writer = target.writer()
        stages = [*pipeline.models, pipeline.encode]
        for stage in stages:
            with self.hooks(f"{stage.name}.setup", []):
                stage.setup()
        for row in rows:
            for piece in self._decoded(pipeline, row):
                batch = [piece]
                for stage in stages:
                    size = stage.batch_size
                    with self.hooks(stage.name, batch):
                        batch = [out for k in range(0, len(batch), size) for out in stage(batch[k : k + size])]
                for record in writer(batch):
                    on_unit(unit_summary(record))
