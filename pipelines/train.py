"""The Dual-AR trainer under Ray Train: `config.ray.workers` processes, each running training.trainer.train.

Ray Train's TorchTrainer starts the workers and their process group (gloo on CPUs, NCCL with one GPU per
worker); the loop takes its rank and world from torch.distributed, so it is the very loop `s2 train` runs in one
process. Checkpoints, metrics.jsonl and the final model go to runtime.out (local or s3://; with several machines,
a shared folder or S3), written by rank 0; every worker reports each metrics line to Ray Train. Ray Train's own
run records go under runtime.out/ray.
"""

from __future__ import annotations

import os

from pipelines.ray_env import ensure_ray
from schemas.training import TrainConfig


def _worker_loop(config: dict) -> None:
    import ray.train
    import ray.train.torch

    from training.trainer import train

    train(TrainConfig.model_validate(config), device=ray.train.torch.get_device(), report=ray.train.report)


def ray_storage(out: str) -> str:
    """Where Ray Train keeps its run records: beside the run's own files (an absolute path, or the S3 prefix)."""
    return f"{out.rstrip('/')}/ray" if out.startswith("s3://") else os.path.abspath(os.path.join(out, "ray"))


def run_ray_training(config: TrainConfig):
    """Train on a Ray cluster (RAY_ADDRESS or ray.address; else a local Ray); returns Ray Train's Result."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    ensure_ray(config.ray.address)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config=config.model_dump(mode="json"),
        scaling_config=ScalingConfig(
            num_workers=config.ray.workers,
            use_gpu=config.ray.use_gpu,
            resources_per_worker={"CPU": config.ray.cpus_per_worker, **({"GPU": 1} if config.ray.use_gpu else {})},
        ),
        torch_config=TorchConfig(backend="nccl" if config.ray.use_gpu else "gloo"),
        run_config=RunConfig(name="s2-train", storage_path=ray_storage(config.runtime.out)),
    )
    return trainer.fit()
