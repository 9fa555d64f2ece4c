"""Connecting to Ray: a cluster when an address is given (or RAY_ADDRESS is set), else a quiet local Ray."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator

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
        stop_idle_daemons()


def stop_idle_daemons() -> None:
    """Stop the head's Python daemons that a run's own one-node Ray leaves idle: the autoscaler's monitor (the node
    is all there is), the log monitor (worker logs do not go to the driver) and, while usage statistics are off, the
    API server, which without the dashboard serves nothing else (Ray's state API, which Ray Data and Ray Train query
    best-effort, is not served either way). About 180 MB of a local run (make bench-memory). Through the node's own
    (private) stop methods, so that Ray's shutdown does not look for them."""
    node = ray._private.worker._global_node
    node.kill_monitor(check_alive=False)
    node.kill_log_monitor(check_alive=False)
    if os.environ.get("RAY_USAGE_STATS_ENABLED") == "0":
        node.kill_dashboard(check_alive=False)


# One ERROR line per actor pool from the driver's core worker (C++, straight to fd 2): Ray Data always passes its map
# transformer through the object store and restarts failed actors, as it should, and Ray warns that such an actor
# could not be restarted if those arguments were lost. Benign for us (the driver holds them for the whole run).
BENIGN_CORE_WORKER_LINE = re.compile(
    rb"^\[[^\]]*\] core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the object store and max_restarts > 0"
)


@contextlib.contextmanager
def without_benign_ray_lines() -> Iterator[None]:
    """Pass the process's stderr through, minus BENIGN_CORE_WORKER_LINE. Text that cannot start such a line (a
    progress bar's carriage returns, say) goes through at once; a line that could is held until it ends."""
    sys.stderr.flush()
    fd = sys.stderr.fileno()
    saved, (read_end, write_end) = os.dup(fd), os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)

    def pump() -> None:
        held = b""
        with os.fdopen(read_end, "rb", buffering=0) as src:
            while chunk := src.read(65536):
                held += chunk
                *lines, held = held.split(b"\n")
                for line in lines:
                    if not BENIGN_CORE_WORKER_LINE.match(line):
                        os.write(saved, line + b"\n")
                if held and not held.startswith(b"["):
                    os.write(saved, held)
                    held = b""
        if held:
            os.write(saved, held)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)  # closes the pipe's last write end: the pump drains it and stops
        thread.join(timeout=5)
        os.close(saved)


def kill_pool_actors(names: list[str]) -> None:
    """Kill this job's actors of the Ray Data pools `names` (their classes). Ray Data stops a failed execution
    without force: it drops its pools and leaves the actors to reference counting, but a pending task's callback, held
    by Ray's core worker, can keep an actor alive; it then holds its CPUs until the driver exits, and in a long-lived
    driver the next job waits for them (seen: a Ray Train group that never started). They are found in the GCS's actor
    table, by job and class (Ray's public state API needs the dashboard, which a job's Ray may not run)."""
    from ray._private import state

    labels = tuple(f"(MapBatches({name}))" for name in names)  # Ray Data's class name: MapWorker(MapBatches(Name))
    job = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
    core = ray._private.worker.global_worker.core_worker
    for actor_id, info in state.actors(job_id=job).items():
        if info["State"] != "DEAD" and info["ActorClassName"].endswith(labels):
            core.kill_actor(ray.ActorID.from_hex(actor_id), True)
