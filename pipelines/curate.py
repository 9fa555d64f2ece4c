"""The curation graph on Ray Data: the Ray executor of `curation.run.curate`.

decode (tasks) -> model stages (actor pools) -> FLAC encode -> the driver, which writes each work unit once all
its rows have arrived.

Each model stage is its own Ray Data operation with the resources of its config, so a cluster can give model
stages GPU fractions while decoding runs on CPUs; or, with `ray.fuse_stages` (the local profile), all model
stages and the encoder share one actor pool, so each process pays for Python, torch and the models once. The
stages are the very objects the sequential executor calls (curation.stages); rows cross operators as the columns
of curation.row. Completed work units are skipped on restart (curation/io/plan.py, curation/io/shards.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import ray
from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

from curation.io.shards import UnitWriter
from curation.row import Row, from_columns, to_columns
from curation.run import curate
from curation.stages.base import CurationStage
from curation.stages.decode import DecodeStage
from curation.stages.pipeline import CurationPipeline
from pipelines.ray_env import ensure_ray
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

    def __init__(self, stages: list[CurationStage], threads: int):
        self.stages = stages
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
        return to_columns(rows)


def actor_class(name: str) -> type[StageActor]:
    """A StageActor subclass named for its stages, so Ray Data's operators, the dashboard and process titles
    (ray::MapWorker(MapBatches(Separation))) say which stage a worker hosts."""
    return type(name, (StageActor,), {"__module__": __name__, "__qualname__": name})


def decode_batch(batch, stage: DecodeStage) -> Iterator[dict]:
    """Decoding needs no model, so it runs as tasks; one batch per piece, so each piece is its own block."""
    for piece in stage.stream(from_columns(batch)):
        yield to_columns([piece])


def encode_batch(batch, stage: CurationStage) -> dict:
    return to_columns(stage(from_columns(batch)))


def actor_groups(cfg: CurateConfig, pipeline: CurationPipeline) -> list[tuple[str, list[CurationStage], Resources]]:
    """(name, stages, resources) of each actor pool: one per model stage, or, with `ray.fuse_stages`, a single pool
    hosting them all and the encoder (rows leave the actors compressed, and no task worker is kept for encoding)."""
    if cfg.ray.fuse_stages is not None:
        return [("ModelStages", [*pipeline.models, pipeline.encode], cfg.ray.fuse_stages)]
    return [(s.name.value.title(), [s], s.resources) for s in pipeline.models]


class ResourceConfigError(ValueError):
    pass


def check_resources_fit(cfg: CurateConfig, pipeline: CurationPipeline, cpus: float) -> None:
    """Actor pools hold their CPUs for the whole run; if they leave no room for one decode task (and one encode
    task, unless the actors encode), Ray Data waits forever. Say so at start instead."""
    if cfg.ray.fuse_stages is not None:
        pools = {"ray.fuse_stages": cfg.ray.fuse_stages}
    else:
        pools = {f"{s.name.value}.resources": s.resources for s in pipeline.models}
    actors = sum(r.num_cpus * r.concurrency for r in pools.values())
    tasks = (1 if cfg.ray.fuse_stages is not None else 2) * cfg.decode.resources.num_cpus
    if actors + tasks > cpus + 1e-9:
        per_stage = ", ".join(f"{name}.num_cpus={r.num_cpus} x{r.concurrency}" for name, r in pools.items())
        raise ResourceConfigError(
            f"model stages hold {actors:g} CPUs and decode/encode need {tasks:g}, but Ray has {cpus:g}: lower {per_stage} "
            f"or decode.resources.num_cpus={cfg.decode.resources.num_cpus}, or give Ray more CPUs"
        )


# Ray Data packs a task's outputs into blocks of up to 128 MB and hands an actor a whole block per task: a 2-hour
# input's 40 decoded pieces reached the two model actors as blocks of 22 and 18 pieces, so one actor idled for four
# pieces' time, and no piece went on before its block was full. 1 MB makes every piece of a minute or more its own
# block; short ones still share.
BLOCK_TARGET_BYTES = 1 << 20


def configure_data_context() -> DataContext:
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.target_max_block_size = BLOCK_TARGET_BYTES
    return ctx


class RayExecutor:
    """Runs the pipeline on Ray Data. After a run, `dataset` is the executed dataset (its statistics say where the
    time went) and `window` the (start, end) of its execution."""

    def __init__(self, cfg: CurateConfig):
        self.cfg = cfg
        self.dataset: ray.data.Dataset | None = None
        self.window: tuple[float, float] | None = None

    def build_dataset(self, pipeline: CurationPipeline, rows: list[Row]) -> ray.data.Dataset:
        cfg = self.cfg
        ds = ray.data.from_items(
            [{"audio": b"", "encoding": "", "sample_rate": 0, "row": r} for r in rows],
            override_num_blocks=max(1, min(len(rows), cfg.ray.max_blocks)),
        )
        dec = cfg.decode.resources
        ds = ds.map_batches(
            decode_batch,
            fn_kwargs={"stage": pipeline.decode},
            batch_size=dec.batch_size,
            batch_format="numpy",
            compute=TaskPoolStrategy(size=dec.concurrency),
            num_cpus=dec.num_cpus,
        )
        for name, stages, res in actor_groups(cfg, pipeline):
            ds = ds.map_batches(
                actor_class(name),
                fn_constructor_kwargs={"stages": stages, "threads": int(max(1, round(res.num_cpus)))},
                batch_size=res.batch_size,
                batch_format="numpy",
                # a batch takes seconds: hand it to an actor only when that actor is free, or the actors that were
                # given queues finish last while the others idle
                compute=ActorPoolStrategy(size=res.concurrency, max_tasks_in_flight_per_actor=1),
                num_cpus=res.num_cpus,
                num_gpus=res.num_gpus,
            )
        if cfg.ray.fuse_stages is None:
            ds = ds.map_batches(
                encode_batch,
                fn_kwargs={"stage": pipeline.encode},
                batch_size=pipeline.encode.batch_size,
                batch_format="numpy",
                compute=TaskPoolStrategy(size=dec.concurrency),
                num_cpus=dec.num_cpus,
            )
        return ds

    def run(
        self, pipeline: CurationPipeline, rows: list[Row], writer: UnitWriter, on_unit: Callable[[dict], None]
    ) -> None:
        cfg = self.cfg
        ensure_ray(cfg.ray.address, cfg.ray.num_cpus, cfg.ray.object_store_mb)
        check_resources_fit(cfg, pipeline, ray.cluster_resources().get("CPU", 0))
        configure_data_context()
        start = time.time()
        self.dataset = self.build_dataset(pipeline, rows)
        for batch in self.dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for record in writer(from_columns(batch)):
                on_unit(record)
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
            cfg, RayExecutor(cfg), on_unit=lambda record: bar.update(1) if bar is not None else None, on_plan=on_plan
        )
    finally:
        if bar is not None:
            bar.close()
