"""Codec training under Ray Train: `config.ray.workers` processes, each running training.codec.loop.train.

The same conventions as the Dual-AR trainer (pipelines.train): Ray Train starts the workers and their process group
(gloo on CPUs, NCCL with one GPU each); the loop takes rank and world from torch.distributed and shards with FSDP2.
Checkpoints, metrics.jsonl, eval.jsonl and the released-format codec go to runtime.out (local or s3://; with several
machines a shared folder or S3), written by rank 0; every worker reports each metrics line to Ray Train.
"""

from __future__ import annotations

from pipelines.train import fit
from schemas.codec_training import CodecTrainConfig


def _worker_loop(config: dict) -> None:
    import ray.train
    import ray.train.torch

    from training.codec.loop import train

    train(CodecTrainConfig.model_validate(config), device=ray.train.torch.get_device(), report=ray.train.report)


def run_ray_codec_training(config: CodecTrainConfig):
    """Train on a Ray cluster (RAY_ADDRESS or ray.address; else a local Ray); None when it completed, else why it
    failed in one line."""
    return fit(_worker_loop, config, "s2-codec-train")
