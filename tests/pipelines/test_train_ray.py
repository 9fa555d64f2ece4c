"""The trainer under Ray Train: 2 CPU workers (gloo, FSDP2), checkpointing to S3, give the losses of one process fed
the same global batches (one process with 2 loader workers and 2 accumulation steps reads the 2 ranks' streams)."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml

from jobs import train as train_job
from tests.training.conftest import shards  # noqa: F401  (the tiny shards fixture)
from tests.training.tiny import tiny_config
from training.trainer import train

pytestmark = pytest.mark.ray


def test_two_ray_workers_match_one_process_on_the_same_global_batches(ray_session, bucket, shards, tmp_path, capsys):  # noqa: F811
    common = ("runtime.max_steps=4", "runtime.ckpt_every=2", "runtime.log_every=1")
    train(tiny_config(shards, tmp_path / "one", *common, "data.num_workers=2", "optimizer.accumulation=2"))
    config = tiny_config(shards, f"s3://{bucket}/run", *common, "data.num_workers=0")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert train_job.main(["--config", str(tmp_path / "train.yaml"), "--workers", "2"]) == 0  # python -m jobs.train
    assert json.loads(capsys.readouterr().out)["last"]["step"] == 4

    s3 = boto3.client("s3")
    one = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    body = s3.get_object(Bucket=bucket, Key="run/metrics.jsonl")["Body"].read().decode()
    two = [json.loads(line) for line in body.splitlines()]
    assert [m["step"] for m in two] == [1, 2, 3, 4]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] and a["samples"] == b["samples"]  # the same global batch
        for key in ("loss", "loss_slow", "loss_fast", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="run/")["Contents"]}
    assert {"run/checkpoints/latest", "run/checkpoints/step-00000004/state.pt", "run/model/config.json"} <= keys
