"""The trainer under Ray Train: 2 CPU workers (gloo, FSDP2), checkpointing to S3, one of them killed with SIGKILL
mid-run, finish by themselves (FailureConfig: the group restarts from the last reported checkpoint) with the losses
of one process fed the same global batches (one process with 2 loader workers and 2 accumulation steps reads the
2 ranks' streams)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import boto3
import psutil
import pytest
import ray
import yaml

from jobs import train as train_job
from tests.training.conftest import shards  # noqa: F401  (the tiny shards fixture)
from tests.training.tiny import tiny_config
from training.trainer import train

pytestmark = pytest.mark.ray


def train_workers() -> dict[int, psutil.Process]:
    """Ray Train's worker processes among this test's own descendants (the local Ray it started)."""
    found = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(p.cmdline()):
                found[p.pid] = p
        except psutil.Error:
            continue
    return found


def kill_a_worker_after_the_first_checkpoint(bucket: str, seen: dict) -> None:
    """SIGKILL one training worker (by pid) once a checkpoint is on S3; then wait for Ray to start new ones."""
    s3 = boto3.client("s3")
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="run/checkpoints/latest").get("KeyCount", 0)
        workers = train_workers()
        if listed and workers:
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            seen["killed"] = victim
            seen["before"] = set(workers)
            break
        time.sleep(0.05)
    while time.monotonic() < deadline and "killed" in seen:
        if set(train_workers()) - seen["before"]:
            seen["restarted"] = True
            return
        time.sleep(0.05)


def test_two_ray_workers_survive_a_killed_worker_with_the_losses_of_one_process(
    ray_session,
    bucket,
    shards,  # noqa: F811
    tmp_path,
    capsys,
):
    common = ("runtime.max_steps=6", "runtime.ckpt_every=2", "runtime.log_every=1")
    train(tiny_config(shards, tmp_path / "one", *common, "data.num_workers=2", "optimizer.accumulation=2"))
    config = tiny_config(
        shards, f"s3://{bucket}/run", *common, "data.num_workers=0", "ray.max_failures=1", "ray.start_timeout_s=120"
    )
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    seen: dict = {}
    killer = threading.Thread(target=kill_a_worker_after_the_first_checkpoint, args=(bucket, seen), daemon=True)
    killer.start()
    assert train_job.main(["--config", str(tmp_path / "train.yaml"), "--workers", "2"]) == 0  # python -m jobs.train
    killer.join(timeout=60)
    assert seen.get("killed") and seen.get("restarted"), seen  # a worker died mid-run and the group came back
    printed = capsys.readouterr().out  # after Ray's own lines about the dead worker: the summary
    assert json.loads(printed[printed.index("{\n") :])["last"]["step"] == 6

    s3 = boto3.client("s3")
    one = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    body = s3.get_object(Bucket=bucket, Key="run/metrics.jsonl")["Body"].read().decode()
    two = [json.loads(line) for line in body.splitlines()]
    assert [m["step"] for m in two] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] and a["samples"] == b["samples"]  # the same global batch
        for key in ("loss", "loss_slow", "loss_fast", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="run/")["Contents"]}
    assert {"run/checkpoints/latest", "run/checkpoints/step-00000006/state.pt", "run/model/config.json"} <= keys
    assert {"run/checkpoints/step-00000006/__0_0.distcp", "run/checkpoints/step-00000006/__1_0.distcp"} <= keys


@ray.remote
class Holder:
    """Holds CPUs, as a job's left-over actor would."""

    def ready(self) -> bool:
        return True


def test_a_worker_group_that_cannot_start_stops_the_run_in_one_line(ray_session, shards, tmp_path, capsys):  # noqa: F811
    holder = Holder.options(num_cpus=ray.available_resources()["CPU"]).remote()
    try:
        ray.get(holder.ready.remote(), timeout=60)
        config = tiny_config(shards, tmp_path / "run", "runtime.max_steps=1", "ray.start_timeout_s=3")
        (tmp_path / "train.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
        start = time.monotonic()
        assert train_job.main(["--config", str(tmp_path / "train.yaml"), "--workers", "1"]) == 1
        assert time.monotonic() - start < 60  # one try of 3 s, not Ray Train's retries without end
    finally:
        ray.kill(holder)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("training failed: the worker group did not start within ray.start_timeout_s (3 s)")
