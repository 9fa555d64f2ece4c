"""The local Ray a run starts for itself: its object store is capped, its workers get the allocator setting, and
the head's idle Python daemons are stopped. Run in a child process, as a user's driver would, beside the suite's
shared Ray."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, ray
from pipelines.ray_env import ensure_ray
ensure_ray(num_cpus=1, object_store_mb=128)

@ray.remote(num_cpus=0)
def arena():
    return os.environ.get("MALLOC_ARENA_MAX")

import psutil
names = {os.path.basename(t) for p in psutil.Process().children(recursive=True) for t in p.cmdline()}
idle = sorted(names & {"monitor.py", "log_monitor.py", "dashboard.py"})
print(json.dumps({"store": ray.cluster_resources()["object_store_memory"], "arena": ray.get(arena.remote()), "idle": idle}))
ray.shutdown()
"""


@pytest.mark.ray
def test_a_local_ray_has_the_capped_store_and_the_worker_environment():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"store": 128 * 2**20, "arena": "2", "idle": []}
