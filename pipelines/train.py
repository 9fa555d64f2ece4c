"""The Dual-AR trainer under Ray Train: `config.ray.workers` processes, each running training.trainer.train.

Ray Train's TorchTrainer starts the workers and their process group (gloo on CPUs, NCCL with one GPU per
worker); the loop takes its rank and world from torch.distributed, so it is the very loop `s2 train` runs in one
process. Checkpoints (every rank its shards), metrics.jsonl and the final model go to runtime.out (local or s3://;
with several machines, a shared folder or S3); every worker reports each metrics line to Ray Train.

Fault tolerance: each completed checkpoint is reported to Ray Train as a `ray.train.Checkpoint` holding only a
pointer (checkpoint.json: the URI of the DCP folder in runtime.out), so the shards are not copied twice. When a
worker process dies, Ray Train restarts the group (FailureConfig(max_failures=ray.max_failures)); every worker
reads the last reported pointer (`ray.train.get_checkpoint`) and resumes from it, and the trainer checks that all
ranks resumed the same step. Ray Train's own run records go under runtime.out/ray.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pipelines.ray_env import ensure_ray
from schemas.training import TrainConfig

POINTER = "checkpoint.json"


def _resume_point() -> str | None:
    """The URI of the checkpoint Ray Train last recorded for this run (after a restart), or None."""
    import ray.train

    reported = ray.train.get_checkpoint()
    if reported is None:
        return None
    with reported.as_directory() as folder:
        return json.loads((Path(folder) / POINTER).read_text())["uri"]


def _report(metrics: dict, checkpoint: str | None) -> None:
    """ray.train.report on every rank; rank 0 attaches the pointer to a newly completed checkpoint."""
    import ray.train

    if checkpoint is None or ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / POINTER).write_text(json.dumps({"uri": checkpoint}))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _worker_loop(config: dict) -> None:
    import ray.train.torch

    from training.trainer import train

    config = TrainConfig.model_validate(config)
    train(config, device=ray.train.torch.get_device(), report=_report, resume_from=_resume_point())


def ray_storage(out: str) -> str:
    """Where Ray Train keeps its run records: beside the run's own files (an absolute path, or the S3 prefix)."""
    return f"{out.rstrip('/')}/ray" if out.startswith("s3://") else os.path.abspath(os.path.join(out, "ray"))


def failure_config(max_failures: int, start_timeout_s: float):
    """Up to `max_failures` restarts of the group after a worker dies; a group that does not start within
    `start_timeout_s` stops the run (Ray Train counts it as a controller failure and would retry it without limit).
    Ray Train reads the timeout from the driver's environment and hands it to its controller."""
    from ray.train import FailureConfig

    os.environ["RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"] = str(start_timeout_s)
    return FailureConfig(max_failures=max_failures, controller_failure_limit=0)


def fit(worker_loop, config, name: str) -> str | None:
    """Run `worker_loop(config as a dict)` on `config.ray.workers` Ray Train workers (RAY_ADDRESS or ray.address; else
    a local Ray), with Ray Train's records under runtime.out/ray, up to ray.max_failures restarts of the group and
    each start bounded by ray.start_timeout_s; returns None when it completed, else why it failed in one line.
    `config`: a training config with `ray` (schemas.training.RayConfig) and `runtime.out` (the Dual-AR trainer's, the
    codec's)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    ensure_ray(config.ray.address)
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config=config.model_dump(mode="json"),
        scaling_config=ScalingConfig(
            num_workers=config.ray.workers,
            use_gpu=config.ray.use_gpu,
            resources_per_worker={"CPU": config.ray.cpus_per_worker, **({"GPU": 1} if config.ray.use_gpu else {})},
        ),
        torch_config=TorchConfig(backend="nccl" if config.ray.use_gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            storage_path=ray_storage(config.runtime.out),
            failure_config=failure_config(config.ray.max_failures, config.ray.start_timeout_s),
        ),
    )
    return run_trainer(trainer, config.ray.start_timeout_s)


def run_trainer(trainer, start_timeout_s: float) -> str | None:
    """Run a Ray Train trainer: None when it completed, else its root cause in one line. Ray Train raises a failed
    run's error from fit() (TrainingFailedError: workers out of restarts, a group that did not start in time)."""
    from ray.train import TrainingFailedError

    try:
        error = trainer.fit().error
    except TrainingFailedError as exc:
        error = exc
    if error is None:
        return None
    error = getattr(error, "controller_failure", None) or error  # a ControllerError wraps the controller's own
    if type(error).__name__ == "WorkerGroupStartupTimeoutError":  # (the class is private to Ray Train)
        return (
            f"the worker group did not start within ray.start_timeout_s ({start_timeout_s:g} s): the cluster has no "
            "room for it (its CPUs or GPUs held by other work, or nodes not added yet)"
        )
    while getattr(error, "__cause__", None) is not None:
        error = error.__cause__
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[-1] if message else ''}"


def run_ray_training(config: TrainConfig):
    """Train on a Ray cluster (RAY_ADDRESS or ray.address; else a local Ray); None when it completed, else why it
    failed in one line."""
    return fit(_worker_loop, config, "s2-train")
