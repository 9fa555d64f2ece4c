"""Exactly-once under crashes: kill the driver (or a worker) at several points, run the same command
again, and compare with an uninterrupted run: same keys, same audio and JSON, consistent index."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines.curate import run_curation
from tests.conftest import DATA, EXAMPLES
from tests.pipelines.test_curate_e2e import read_shards_webdataset, spine_config

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job(ray_session, tmp_path_factory):
    src = tmp_path_factory.mktemp("in")
    clips = sorted((DATA / "speech").glob("*")) + sorted(EXAMPLES.glob("*.wav")) + sorted(EXAMPLES.glob("*.flac"))
    for i, clip in enumerate(clips):
        shutil.copy(clip, src / f"{i:02d}_{clip.name}")
    ref = tmp_path_factory.mktemp("ref")
    run_curation(trickle_config(src, ref), progress=False)
    return src, ref, len(clips)


def trickle_config(src, out):
    """One input per unit, one row per batch: units complete one by one, so kill points land mid-run."""
    one = {"batch_size": 1, "concurrency": 1}
    return spine_config(
        src, out, shards={"inputs_per_unit": 1}, decode={"resources": one}, segmentation={"resources": one}
    )


@contextlib.contextmanager
def running(src: Path, out: Path):
    """`s2 curate` on the session's Ray in a child process (its stderr in OUT.log); killed on the way out if it still
    runs, so a failing test leaves no job holding the shared Ray's CPUs."""
    import ray

    cfg = trickle_config(src, out).model_dump(mode="json")
    (out.parent / f"{out.name}.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(ROOT))
    with open(out.parent / f"{out.name}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.curate", "--config", str(out.parent / f"{out.name}.yaml"), "--no-progress"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def log_tail(out: Path) -> str:
    return (out.parent / f"{out.name}.log").read_text(errors="replace")[-3000:]


def wait_for(predicate, timeout: float = 120) -> None:
    t0 = time.time()
    while not predicate():
        assert time.time() - t0 < timeout, "kill point never reached"
        time.sleep(0.01)


def units_done(out: Path) -> int:
    return len(list((out / "_units").glob("unit-*.json"))) if (out / "_units").exists() else 0


def assert_same_as_reference(out: Path, ref: Path) -> None:
    a, b = read_shards_webdataset(out), read_shards_webdataset(ref)
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key]["flac"] == b[key]["flac"] and a[key]["json"] == b[key]["json"]
    index = json.loads((out / "index.json").read_text())
    listed = {s["url"] for s in index["shardlist"]}
    # every file under a final name is indexed and whole (temporaries of a dying writer are not final names)
    assert listed == {f"shards/{p.name}" for p in (out / "shards").glob("shard-*.tar")}
    for s in index["shardlist"]:
        assert hashlib.sha256((out / s["url"]).read_bytes()).hexdigest() == s["sha256"]


@pytest.mark.parametrize("kill_after_units", [0, 8])  # before any unit is done, and well into the run
def test_driver_killed_then_resumed(job, tmp_path, kill_after_units):
    src, ref, n = job
    out = tmp_path / "out"
    with running(src, out) as proc:
        wait_for(lambda: (out / "_run" / "plan.json").exists() and units_done(out) >= kill_after_units)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert units_done(out) < n, "the run finished before it could be killed"
    summary = run_curation(trickle_config(src, out), progress=False)
    assert summary["resumed"] and summary["units_skipped"] >= kill_after_units
    assert_same_as_reference(out, ref)


def stage_actor_pid(driver_pid: int) -> int | None:
    """The process id of a model-stage actor of the job whose driver is `driver_pid` (the run this test started):
    never a worker of another job on the same machine. Read from the GCS tables (the test Ray has no dashboard for
    the state API)."""
    import ray

    jobs = [j["JobID"] for j in ray.state.jobs() if j.get("DriverPid") == driver_pid]
    if not jobs:
        return None
    pids = [
        a["Pid"]
        for a in ray.state.actors().values()
        if a["JobID"] == jobs[-1] and a["State"] == "ALIVE" and "MapWorker" in a["ActorClassName"] and a["Pid"]
    ]
    return pids[0] if pids else None


def test_worker_killed_then_resumed(job, tmp_path):
    src, ref, n = job
    out = tmp_path / "out"
    with running(src, out) as proc:
        wait_for(lambda: units_done(out) >= 2)
        pid = stage_actor_pid(proc.pid)
        assert pid is not None, "the run's stage actors were not found"
        os.kill(pid, signal.SIGKILL)
        try:  # the run either recovers or stops with an incomplete-run error
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the run neither finished nor stopped within 120 s of losing a stage actor:\n" + log_tail(out))
    run_curation(trickle_config(src, out), progress=False)
    assert_same_as_reference(out, ref)
