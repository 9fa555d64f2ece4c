"""The curation graph on Ray Data.

decode (tasks) -> separation -> VAD segmentation -> quality -> transcription (actor pools)
-> FLAC encode (tasks) -> the driver, which writes each work unit once all its rows have arrived.

Each model stage is its own Ray Data operation with the resources of its config, so a cluster can give
model stages GPU fractions while decoding runs on CPUs; or, with `ray.fuse_stages` (the local profile),
all model stages and the encoder share one actor pool, so each process pays for Python, torch and the
models once. Only the kept segments' FLAC bytes and the reject records reach the driver: writing there
rather than in a writer actor spares a Ray worker process (~150 MB). Completed work units are skipped on
restart (curation/plan.py, curation/shards.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import ray
from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

from curation import storage
from curation.decode import decode_batch, input_rows
from curation.ingest import list_inputs
from curation.plan import completed_units, load_or_create_plan
from curation.report import write_report
from curation.shards import SHARDS_DIR, UnitWriter, encode_audio, finalize
from pipelines.ray_env import ensure_ray
from pipelines.stages import actor_groups, decode_rate, encodes_in_actors, model_stages, preflight
from schemas.config import CurateConfig


class StageActor:
    """Hosts curation stages in a Ray actor: builds them once, then limits torch threads to the actor's CPUs.
    Only a stage that uses torch has imported it."""

    def __init__(self, factory: Callable, threads: int):
        self.stage = factory()
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(max(1, threads))

    def __call__(self, batch):
        return self.stage(batch)


def actor_class(name: str) -> type[StageActor]:
    """A StageActor subclass named for its stage, so Ray Data's operators, the dashboard and process titles
    (ray::MapWorker(MapBatches(Separation))) say which stage a worker hosts."""
    return type(name, (StageActor,), {"__module__": __name__, "__qualname__": name})


class IncompleteRunError(RuntimeError):
    pass


class ResourceConfigError(ValueError):
    pass


def check_resources_fit(cfg: CurateConfig, cpus: float) -> None:
    """Actor pools hold their CPUs for the whole run; if they leave no room for one decode task (and one
    encode task, unless the actors encode), Ray Data waits forever. Say so at start instead."""
    if cfg.ray.fuse_stages is not None:
        pools = {"ray.fuse_stages": cfg.ray.fuse_stages}
    else:
        pools = {f"{s.name}.resources": s.resources for s in model_stages(cfg)}
    actors = sum(r.num_cpus * r.concurrency for r in pools.values())
    tasks = (1 if encodes_in_actors(cfg) else 2) * cfg.decode.resources.num_cpus
    if actors + tasks > cpus + 1e-9:
        per_stage = ", ".join(f"{name}.num_cpus={r.num_cpus} x{r.concurrency}" for name, r in pools.items())
        raise ResourceConfigError(
            f"model stages hold {actors:g} CPUs and decode/encode need {tasks:g}, but Ray has {cpus:g}: lower {per_stage} "
            f"or decode.resources.num_cpus={cfg.decode.resources.num_cpus}, or give Ray more CPUs"
        )


# Ray Data packs a task's outputs into blocks of up to 128 MB and hands an actor a whole block per task: a
# 2-hour input's 40 decoded pieces reached the two model actors as blocks of 22 and 18 pieces, so one actor
# idled for four pieces' time, and no piece went on before its block was full. 1 MB makes every piece of a
# minute or more its own block; short ones still share.
BLOCK_TARGET_BYTES = 1 << 20


def configure_data_context() -> DataContext:
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.target_max_block_size = BLOCK_TARGET_BYTES
    return ctx


def build_dataset(cfg: CurateConfig, inputs: list[dict]) -> ray.data.Dataset:
    rows = input_rows(inputs)
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), cfg.ray.max_blocks)))
    dec = cfg.decode.resources
    rate, upsample = decode_rate(cfg)
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"cfg": cfg.decode, "sample_rate": rate, "upsample": upsample},
        batch_size=dec.batch_size,
        batch_format="numpy",
        compute=TaskPoolStrategy(size=dec.concurrency),
        num_cpus=dec.num_cpus,
    )
    for name, factory, res in actor_groups(cfg):
        ds = ds.map_batches(
            actor_class(name),
            fn_constructor_kwargs={"factory": factory, "threads": int(max(1, round(res.num_cpus)))},
            batch_size=res.batch_size,
            batch_format="numpy",
            # a batch takes seconds: hand it to an actor only when that actor is free, or the actors that
            # were given queues finish last while the others idle
            compute=ActorPoolStrategy(size=res.concurrency, max_tasks_in_flight_per_actor=1),
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
        )
    if not encodes_in_actors(cfg):
        ds = ds.map_batches(encode_audio, batch_size=16, batch_format="numpy", compute=TaskPoolStrategy(size=dec.concurrency), num_cpus=dec.num_cpus)
    return ds


def run_curation(cfg: CurateConfig, progress: bool | None = None) -> dict:
    """Run (or resume) a curation job; returns the summary, also in OUTPUT/report/summary.json."""
    t0 = time.time()
    progress = sys.stderr.isatty() if progress is None else progress
    preflight(cfg)
    plan, resumed = load_or_create_plan(cfg, lambda: list_inputs(cfg.input, cfg.extensions))
    storage.remove_stale_temporaries(storage.join(cfg.output, SHARDS_DIR))
    done = completed_units(cfg.output, plan)
    todo_units = {u: n for u, n in plan.units.items() if u not in done}
    todo_inputs = [i for i in plan.inputs if i["unit"] in todo_units]

    if todo_inputs:
        ensure_ray(cfg.ray.address, cfg.ray.num_cpus, cfg.ray.object_store_mb)
        check_resources_fit(cfg, ray.cluster_resources().get("CPU", 0))
        configure_data_context()
        ds = build_dataset(cfg, todo_inputs)
        writer = UnitWriter(cfg.output, todo_units, cfg.shards)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(plan.units), initial=len(done), unit="unit", desc="curate", file=sys.stderr)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            finished = writer(batch)
            if bar is not None:
                bar.update(len(finished["unit"]))
        if bar is not None:
            bar.close()

    missing = set(plan.units) - completed_units(cfg.output, plan)
    if missing:
        raise IncompleteRunError(f"{len(missing)} work units did not complete (e.g. {sorted(missing)[:5]}); run the same command again to resume")
    summary, samples, rejects = finalize(cfg.output, plan)
    wall = time.time() - t0
    summary.update(
        resumed=resumed,
        units_skipped=len(done),
        wall_s=round(wall, 2),
        audio_hours_per_hour=round(summary["hours_in"] * 3600 / wall, 2) if wall > 0 else None,
        output=cfg.output,
    )
    summary["report"] = write_report(cfg.output, samples, rejects, summary, cfg.quality.thresholds if cfg.quality.enabled else {})
    return summary
