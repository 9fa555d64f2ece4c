"""Unit writers on the worker nodes: Ray actors that assemble work units and write their shards, so that only per-unit
summaries reach the driver.

Every row of a unit goes to the same writer (unit mod number of writers): the last stage of the graph hands its rows
over (`deliver`) and passes on, downstream to the driver, only the summaries of the units those rows completed. A
writer buffers a unit's rows until each of its inputs has delivered all its rows, runs the source stages on each
completed input, then writes the unit's shards and, last, its completion record (curation.io.shards.UnitWriter).
Rows a retried task delivers twice replace their first copy.
"""

from __future__ import annotations

from collections import defaultdict

import ray

from curation.io.plan import RunPlan
from curation.io.shards import UnitWriter, finalize, unit_summary
from curation.report.stats import RunStats
from curation.row import Row, from_columns, to_columns
from curation.run import UnitTarget
from schemas.config import Resources

SUMMARY_COLUMNS = ("unit", "samples", "rejects")


class UnitWriterActor:
    def __init__(self, writer: UnitWriter):
        self.writer = writer

    def add(self, batch: dict) -> list[dict]:
        return [unit_summary(record) for record in self.writer(from_columns(batch))]

    def pending_units(self) -> list[int]:
        return self.writer.pending_units()

    def finalize(self, output: str, plan: RunPlan) -> tuple[dict, RunStats]:
        return finalize(output, plan)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


def start_writers(target: UnitTarget, resources: Resources) -> list:
    """`resources.concurrency` writer actors, writer i owning the units u with u mod concurrency == i. Each takes a
    CPU share so that a head node offering no CPUs to tasks never hosts one."""
    n = resources.concurrency
    actor = ray.remote(UnitWriterActor).options(num_cpus=resources.num_cpus, num_gpus=0, max_restarts=0)
    return [actor.remote(target.writer({u: k for u, k in target.units.items() if u % n == i})) for i in range(n)]


def deliver(rows: list[Row], writers: list) -> dict:
    """Hand rows to their units' writers (waiting until they took them: a slow writer slows the graph instead of
    filling memory) and return the summaries of the units completed, as a batch for the driver."""
    by_writer: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_writer[row.unit % len(writers)].append(row)
    replies = ray.get([writers[w].add.remote(to_columns(rs)) for w, rs in sorted(by_writer.items())])
    done = [s for summaries in replies for s in summaries]
    return {c: [s[c] for s in done] for c in SUMMARY_COLUMNS}
