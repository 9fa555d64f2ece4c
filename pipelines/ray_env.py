"""Connecting to Ray: a cluster when an address is given (or RAY_ADDRESS is set), else a quiet local Ray."""

from __future__ import annotations

import logging
import os
import warnings

import ray

# glibc gives every thread that allocates its own arena and keeps freed memory there; Ray workers run dozens
# of threads (gRPC, torch, ONNX Runtime), so without a cap a worker's footprint is its arenas' high-water marks.
WORKER_ENV = {"MALLOC_ARENA_MAX": "2"}


def ensure_ray(address: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None) -> None:
    # Ray Data logs every execution and its progress-bar setting at INFO/WARNING: keep runs quiet.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # benign on small runs: a task or actor pool sized for more blocks than the run has (a few short files
    # decode into one block)
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks", category=UserWarning)
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # "local": a fresh in-process Ray, never a cluster that `ray start` left recorded on this machine
        ray.init(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 2**20 if object_store_mb else None,
            runtime_env={"env_vars": WORKER_ENV},
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
