"""GRPO against a real reward service on 127.0.0.1 that fails a set fraction of its requests (every 4th, one group's
request of every other step): retried, the run gives the in-process results; not retried, the failed group is dropped
and counted, and a step where more than rewards.max_failed_fraction failed stops the run in one line."""

from __future__ import annotations

import json

import pytest

from schemas.grpo import DurationConfig
from tests.models.rewards.faulty_service import TOKEN, FaultyService
from tests.training.grpo.conftest import BASE, grpo_config
from training.grpo.loop import GRPOError, train_grpo
from training.grpo.rewards import DurationReward, build_rewards

STEPS = ("runtime.steps=4", "runtime.ckpt_every=4")
# the service scores the audio's duration like the in-process `duration` reward, under the services' name 'quality'
SERVED = DurationReward(DurationConfig(**BASE["rewards"]["duration"]))


def every_fourth_fails(n: int):
    return 503 if n % 4 == 3 else "ok"  # requests 3, 7: the second group of steps 2 and 4


@pytest.fixture
def service():
    s = FaultyService(SERVED, every_fourth_fails)
    yield s
    s.close()


def _through(service, prompts_file, out, *overrides):
    layer = {"rewards": {"weights": {"quality": 1.0}, "url": service.url, "retry_backoff_s": 0.01}}
    config = grpo_config(prompts_file, out, *STEPS, *overrides, layer=layer)
    summary = train_grpo(config, build_rewards(config.rewards))
    return summary, [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("S2_REWARDS_TOKEN", TOKEN)


def test_retried_failures_give_the_in_process_run(service, prompts_file, tmp_path):
    _, served = _through(service, prompts_file, tmp_path / "served", "rewards.retries=1")
    assert service.requests.count(503) == 2 and len(service.requests) == 2 * 4 + 2  # 2 groups a step, 2 retries
    config = grpo_config(prompts_file, tmp_path / "local", *STEPS)
    train_grpo(config, build_rewards(config.rewards))
    local = [json.loads(line) for line in (tmp_path / "local" / "rewards.jsonl").read_text().splitlines()]
    for a, b in zip(served, local, strict=True):
        assert a["components"]["quality"] == b["components"]["duration"] and a["total"] == b["total"]
        assert (a["loss"], a["grad_norm"], a["errors"]) == (b["loss"], b["grad_norm"], b["errors"])


def test_failed_groups_are_dropped_and_counted(service, prompts_file, tmp_path):
    _, lines = _through(service, prompts_file, tmp_path, "rewards.retries=0", "rewards.max_failed_fraction=0.5")
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    for line in lines:
        if line["step"] % 2:  # only rollouts without audio fail, if any: the worst reward, not dropped
            assert line["unscored"] == line["dropped"] == 0
            assert line["errors"] == 0 or line["error"].startswith("no audio")
            continue
        # the second group's request failed: its rollouts with audio are dropped, the first group's rewards stand alone
        # (and a lone rollout left in that group without a baseline: dropped too)
        assert 0 < line["unscored"] <= 8 and line["dropped"] >= line["unscored"] and line["errors"] >= line["unscored"]
        assert 0 < line["total"] <= 1


def test_too_many_failures_stop_the_run_in_one_line(service, prompts_file, tmp_path):
    with pytest.raises(GRPOError) as caught:
        _through(service, prompts_file, tmp_path, "rewards.retries=0")  # max_failed_fraction 0.25 by default
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("step 2: a reward service left ")
    assert "of 16 rollouts without a reward, more than rewards.max_failed_fraction 0.25" in message
    assert message.endswith("; most often: quality: reward service: 503: planned 503")
    lines = (tmp_path / "rewards.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]  # the failed step wrote nothing
