"""The curation graph on Ray Data: the Ray executor of `curation.run.curate`.

units to do -> decode (tasks: each unit's inputs read from the stored plan, then decoded) -> model stages (actor
pools) -> FLAC encode -> unit writers (actors on the worker nodes, each writing a work unit once all its rows have
arrived) -> per-unit summaries to the driver; then index, manifest and rejects in a Ray task.

Each model stage is its own Ray Data operation with the resources at its declared config key, so a cluster can give model
stages GPU fractions while decoding runs on CPUs; or, with `ray.fuse_stages` (the local profile), all model
stages and the encoder share one actor pool, so each process pays for Python, torch and the models once. The
stages are the very objects the sequential executor calls (curation.stages); rows cross operators as the columns
of curation.row. The last operator hands its rows to the writers (pipelines/writers.py) and passes on only the
summaries of the units they completed: the driver never holds audio. Completed work units are skipped on restart
(curation/io/plan.py, curation/io/shards.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import ray
from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

from curation.io.plan import RunPlan
from curation.io.shards import finalize
from curation.report.stats import RunStats
from curation.row import from_columns, to_columns
from curation.run import PlannedInputs, UnitTarget, curate
from curation.stages.base import CurationStage
from curation.stages.decode import DecodeStage, InputNotOnNodeError
from curation.stages.failure import StageFailure
from curation.stages.pipeline import CurationPipeline
from pipelines.cluster_checks import check_nodes
from pipelines.cluster_fit import check_fit, cluster_node_types, pool_demands
from pipelines.ray_env import ensure_ray, kill_pool_actors, without_benign_ray_lines
from pipelines.writers import deliver, start_writers
from schemas.config import CurateConfig, Resources

# glibc only (musl and macOS have no malloc_trim)
if sys.platform.startswith("linux"):
    import ctypes
    import ctypes.util

    _MALLOC_TRIM = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)
else:
    _MALLOC_TRIM = None


def return_freed_memory() -> None:
    """Hand what a stage freed (activations, audio) back to the OS. glibc keeps freed memory in its arenas
    otherwise, so a process would hold every stage's largest footprint at once for the rest of the run."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class StageActor:
    """Hosts curation stages in a Ray actor, in order: sets them up once, limits torch to the actor's CPUs, and
    calls each stage on slices of its own batch size (a piece explodes into many segments at segmentation).
    Only a stage that uses torch has imported it."""

    def __init__(self, stages: list[CurationStage], threads: int, writers: list | None = None):
        self.stages = stages
        self.writers = writers  # set on the graph's last operator: rows go to the writers, summaries go on
        for stage in stages:
            stage.setup()
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(max(1, threads))
        return_freed_memory()  # what loading the models left behind (state dicts, layout copies): ~100 MB

    def __call__(self, batch) -> dict:
        rows = from_columns(batch)
        for stage in self.stages:
            if rows:
                size = stage.batch_size
                rows = [out for k in range(0, len(rows), size) for out in stage(rows[k : k + size])]
            return_freed_memory()
        return deliver(rows, self.writers) if self.writers else to_columns(rows)


def actor_class(name: str) -> type[StageActor]:
    """A StageActor subclass named for its stages, so Ray Data's operators, the dashboard and process titles
    (ray::MapWorker(MapBatches(Separation))) say which stage a worker hosts."""
    return type(name, (StageActor,), {"__module__": __name__, "__qualname__": name})


def decode_units(batch, inputs: PlannedInputs, stage: DecodeStage) -> Iterator[dict]:
    """The first operator: each work unit's inputs, read from the stored plan here (the driver never holds them), then
    decoded. Decoding needs no model, so it runs as tasks; one batch per piece, so each piece is its own block."""
    for unit in batch["unit"]:
        for piece in stage.stream(inputs.unit_rows(int(unit))):
            yield to_columns([piece])


def encode_and_deliver(batch, stage: CurationStage, writers: list) -> dict:
    """The last operator when every model stage has its own pool: FLAC encoding, then the rows to their writers."""
    return deliver(stage(from_columns(batch)), writers)


def actor_groups(
    cfg: CurateConfig, pipeline: CurationPipeline
) -> list[tuple[str, str, list[CurationStage], Resources]]:
    """(name, setting, stages, resources) of each actor pool: one per model stage, its resources at its declared
    config key, or, with `ray.fuse_stages`, a single pool hosting them all and the encoder (rows leave the actors
    compressed, and no task worker is kept for encoding)."""
    if cfg.ray.fuse_stages is not None:
        return [("ModelStages", "ray.fuse_stages", [*pipeline.models, pipeline.encode], cfg.ray.fuse_stages)]
    return [
        (s.name.value.title(), f"{s.decl.config_key}.resources", [s], getattr(cfg, s.decl.config_key).resources)
        for s in pipeline.models
    ]


def writer_resources(cfg: CurateConfig, pipeline: CurationPipeline, units: int | None = None) -> Resources:
    """The unit writers: `ray.writers`, by default as many as the units in flight at once (one per actor of the
    largest pool: each actor works on its own input), at most one per unit to do."""
    w = cfg.ray.writers
    n = w.concurrency or max(res.concurrency for *_, res in actor_groups(cfg, pipeline))
    return Resources(num_cpus=w.num_cpus, num_gpus=w.num_gpus, concurrency=min(n, units or n), batch_size=w.batch_size)


def check_resources_fit(cfg: CurateConfig, pipeline: CurationPipeline) -> None:
    """Every actor pool, the writers and one decode (and encode) task must fit the cluster's node types at once, or
    Ray Data waits forever: say so at start instead (pipelines/cluster_fit.py)."""
    fused = cfg.ray.fuse_stages is not None
    pools = {setting: res for _, setting, _, res in actor_groups(cfg, pipeline)}
    pools["ray.writers"] = writer_resources(cfg, pipeline)
    check_fit(pool_demands(pools, cfg.decode.resources, encode_in_tasks=not fused), cluster_node_types())


# Ray Data packs a task's outputs into blocks of up to 128 MB and hands an actor a whole block per task: a 2-hour
# input's 40 decoded pieces reached the two model actors as blocks of 22 and 18 pieces, so one actor idled for four
# pieces' time, and no piece went on before its block was full. 1 MB makes every piece of a minute or more its own
# block; short ones still share.
BLOCK_TARGET_BYTES = 1 << 20


def configure_data_context(retries: int = 0) -> DataContext:
    """Ray Data as the curation graph needs it; `retries`: times a map task whose stage failed (StageFailure) is
    retried before the run stops (failure.retries)."""
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.target_max_block_size = BLOCK_TARGET_BYTES
    ctx.raise_original_map_exception = True  # the stage's own exception, not "UDF failed" without its cause
    ctx.retried_map_errors = [StageFailure.PATTERN]
    ctx.max_map_retries = retries
    return ctx


# errors found on a worker that say what to change: the run stops with their own one line, not Ray's traceback
ONE_LINE_ERRORS = (InputNotOnNodeError, StageFailure)


def one_line_cause(exc: BaseException) -> BaseException | None:
    """The first of ONE_LINE_ERRORS in the chain of causes Ray Data wraps a worker's exception in."""
    cause = exc
    while cause is not None:
        inner = getattr(cause, "cause", None)  # a RayTaskError's original exception (it subclasses the original's type)
        if inner is None and isinstance(cause, ONE_LINE_ERRORS):
            return cause
        cause = inner or cause.__cause__
    return None


class RayExecutor:
    """Runs the pipeline on Ray Data. After a run, `dataset` is the executed dataset (its statistics say where the
    time went), `window` the (start, end) of its execution and `writer_nodes` where the units were written."""

    def __init__(self, cfg: CurateConfig):
        self.cfg = cfg
        self.dataset: ray.data.Dataset | None = None
        self.window: tuple[float, float] | None = None
        self.writer_nodes: list[str] = []  # the Ray nodes the unit writers ran on
        self.writers: list = []  # a completed run's unit writers, kept for finalize

    def prepare(self, pipeline: CurationPipeline) -> None:
        cfg = self.cfg
        ensure_ray(cfg.ray.address, cfg.ray.num_cpus, cfg.ray.object_store_mb)
        check_resources_fit(cfg, pipeline)
        check_nodes(cfg, writer_resources(cfg, pipeline))

    def finalize(self, output: str, plan: RunPlan) -> tuple[dict, RunStats]:
        """On a unit writer of the run, still up with its imports done (a fresh worker's start-up was most of a small
        run's finalize), else (a resume with nothing to do) in a Ray task on a worker: the driver parses no sample."""
        writers, self.writers = self.writers, []
        try:
            if writers:
                return ray.get(writers[0].finalize.remote(output, plan))
            task = ray.remote(finalize).options(num_cpus=self.cfg.ray.writers.num_cpus, max_retries=1)
            return ray.get(task.remote(output, plan))
        finally:
            for writer in writers:
                ray.kill(writer)

    def build_dataset(self, pipeline: CurationPipeline, inputs: PlannedInputs, writers: list) -> ray.data.Dataset:
        cfg = self.cfg
        units = inputs.units
        ds = ray.data.from_items(
            [{"unit": u} for u in units], override_num_blocks=max(1, min(len(units), cfg.ray.max_blocks))
        )
        dec = cfg.decode.resources
        tasks = {"compute": TaskPoolStrategy(size=dec.concurrency), "num_cpus": dec.num_cpus, "batch_format": "numpy"}
        ds = ds.map_batches(decode_units, fn_kwargs={"inputs": inputs, "stage": pipeline.decode}, batch_size=1, **tasks)
        fused = cfg.ray.fuse_stages is not None
        for name, _, stages, res in actor_groups(cfg, pipeline):
            ds = ds.map_batches(
                actor_class(name),
                fn_constructor_kwargs={
                    "stages": stages,
                    "threads": int(max(1, round(res.num_cpus))),
                    "writers": writers if fused else None,
                },
                batch_size=res.batch_size,
                batch_format="numpy",
                # a batch takes seconds: hand it to an actor only when that actor is free, or the actors that were
                # given queues finish last while the others idle
                compute=ActorPoolStrategy(size=res.concurrency, max_tasks_in_flight_per_actor=1),
                num_cpus=res.num_cpus,
                num_gpus=res.num_gpus,
            )
        if not fused:
            ds = ds.map_batches(
                encode_and_deliver,
                fn_kwargs={"stage": pipeline.encode, "writers": writers},
                batch_size=pipeline.encode.batch_size,
                **tasks,
            )
        return ds

    def run(
        self, pipeline: CurationPipeline, rows: PlannedInputs, target: UnitTarget, on_unit: Callable[[dict], None]
    ) -> None:
        configure_data_context(self.cfg.failure.retries)
        writers = start_writers(target, writer_resources(self.cfg, pipeline, len(target.units)))
        self.writer_nodes = ray.get([w.node_id.remote() for w in writers])
        start = time.time()
        try:
            with without_benign_ray_lines():
                self.dataset = self.build_dataset(pipeline, rows, writers)
                for batch in self.dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    for unit, samples, rejects in zip(batch["unit"], batch["samples"], batch["rejects"]):
                        on_unit({"unit": int(unit), "samples": int(samples), "rejects": int(rejects)})
        except Exception as exc:
            for writer in writers:
                ray.kill(writer)
            kill_pool_actors([name for name, *_ in actor_groups(self.cfg, pipeline)])
            cause = one_line_cause(exc)
            if cause is None:
                raise
            raise cause.with_traceback(None) from None
        self.writers = writers
        self.window = (start, time.time())


def run_curation(cfg: CurateConfig, progress: bool | None = None) -> dict:
    """Run (or resume) a curation job on Ray; returns the summary, also in OUTPUT/report/summary.json."""
    progress = sys.stderr.isatty() if progress is None else progress
    bar = None

    def on_plan(total: int, done: int) -> None:
        nonlocal bar
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=done, unit="unit", desc="curate", file=sys.stderr)

    try:
        return curate(
            cfg, RayExecutor(cfg), on_unit=lambda summary: bar.update(1) if bar is not None else None, on_plan=on_plan
        )
    finally:
        if bar is not None:
            bar.close()
