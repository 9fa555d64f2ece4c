"""The same loop under Ray (`python -m jobs.grpo`): two policy workers under Ray Train (gloo), each generating half
of every step's groups, and the reward in a Ray actor of its own, give the rewards and losses of the one-process run
(up to the order in which the two ranks' gradients are summed)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.training.grpo.conftest import grpo_config

pytestmark = pytest.mark.ray

STEPS = 3
FLOATS = ("total", "group_std", "loss", "loss_slow", "loss_fast", "kl_slow", "kl_fast", "grad_norm")


def test_two_policy_workers_under_ray_match_one_process(ray_session, demo_run, prompts_file, tmp_path, capsys):
    from jobs import grpo as job

    out = tmp_path / "run"
    config = grpo_config(prompts_file, out, f"runtime.steps={STEPS}", "ray.policy_cpus=0.5", "ray.reward_cpus=0.5")
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert job.main(["--config", str(tmp_path / "grpo.yaml"), "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["last"]["step"] == STEPS

    _, one_process, _ = demo_run
    lines = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    for got, want in zip(lines, one_process):
        assert len(got["timeline"]["groups"]) == 1  # rank 0 drew one of the step's two groups
        assert (got["frames"], got["ended"], got["errors"], got["lr"]) == (
            want["frames"],
            want["ended"],
            want["errors"],
            want["lr"],
        )
        assert got["components"] == pytest.approx(want["components"], rel=1e-6)
        for key in FLOATS:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["step"], key)
    assert (out / "model" / "config.json").exists() and (out / "checkpoints" / "latest").exists()
