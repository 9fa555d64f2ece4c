"""The trainer under Ray Train: 2 CPU workers (gloo, FSDP2) give the losses of one process fed the same global
batches (one process with 2 loader workers and 2 accumulation steps reads the 2 ranks' streams)."""

from __future__ import annotations

import json

import pytest

from pipelines.train import run_ray_training
from tests.training.conftest import shards  # noqa: F401  (the tiny shards fixture)
from tests.training.tiny import tiny_config
from training.trainer import train

pytestmark = pytest.mark.ray


def test_two_ray_workers_match_one_process_on_the_same_global_batches(ray_session, shards, tmp_path):  # noqa: F811
    common = ("runtime.max_steps=4", "runtime.ckpt_every=2", "runtime.log_every=1")
    train(tiny_config(shards, tmp_path / "one", *common, "data.num_workers=2", "optimizer.accumulation=2"))
    result = run_ray_training(tiny_config(shards, tmp_path / "ray", *common, "data.num_workers=0", "ray.workers=2"))
    assert result.error is None
    one, two = (
        [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        for name in ("one", "ray")
    )
    assert [m["step"] for m in two] == [1, 2, 3, 4]
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] and a["samples"] == b["samples"]  # the same global batch
        for key in ("loss", "loss_slow", "loss_fast", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)
    assert (tmp_path / "ray" / "checkpoints" / "step-00000004" / "trainer.pt").is_file()
    assert (tmp_path / "ray" / "model" / "config.json").is_file()
