"""The reward client against a real service on 127.0.0.1 that fails chosen requests: timeouts, dropped connections
and 5xx are retried with a doubling wait, a bounded number of times; refusals are not; what still fails says so."""

from __future__ import annotations

import time

import numpy as np
import pytest

from models.rewards.base import RewardItem
from models.rewards.client import RewardClient, RewardServiceError
from schemas.grpo import DurationConfig
from tests.models.rewards.faulty_service import TOKEN, FaultyService
from training.grpo.rewards import DurationReward

RATE = 16000
REWARD = DurationReward(DurationConfig(target_s=1.0))


def _items() -> list[RewardItem]:
    rng = np.random.default_rng(0)
    return [RewardItem(rng.uniform(-0.5, 0.5, int(RATE * s)).astype(np.float32), RATE, "hi") for s in (0.3, 0.7, 1.5)]


@pytest.fixture
def service(request):
    """A FaultyService with the test's plan (a list: request n gets plan[n], "ok" past its end)."""
    plan = request.param
    s = FaultyService(REWARD, lambda n: plan[n] if n < len(plan) else "ok")
    yield s
    s.close()


def _client(service, **kwargs) -> RewardClient:
    return RewardClient(service.url, "quality", token=TOKEN, **{"timeout_s": 0.3, "backoff_s": 0.05} | kwargs)


@pytest.mark.parametrize("service", [[503, "drop", "late", 502]], indirect=True)
def test_transient_failures_are_retried_until_the_service_answers(service):
    items = _items()
    started = time.perf_counter()
    results = _client(service, retries=4).score(items)
    waited = time.perf_counter() - started
    assert service.requests == [503, "drop", "late", 502, "ok"]
    # the service's scores, as the reward gives them in-process
    assert [r.model_dump() for r in results] == [r.model_dump() for r in REWARD.score(items)]
    # waits of 0.05, 0.1, 0.2, 0.4 s and the late answer's 0.3 s deadline: bounded, not a busy loop
    assert 0.05 + 0.1 + 0.2 + 0.4 + 0.3 <= waited < 10


@pytest.mark.parametrize("service", [[503] * 10], indirect=True)
def test_a_service_that_keeps_failing_raises_after_the_last_retry(service):
    with pytest.raises(RewardServiceError, match=r"503: planned 503 \(after 3 tries\)") as caught:
        _client(service, retries=2).score(_items())
    assert caught.value.transient and caught.value.status == 503
    assert service.requests == [503] * 3  # retries + 1 tries, no more


@pytest.mark.parametrize("service", [["hang"]], indirect=True)
def test_a_service_that_does_not_answer_in_time_is_retried(service):
    # the client waits its timeout_s plus 5 s for the service's own 504, then gives up on the request and retries
    results = _client(service, timeout_s=0.2, retries=1).score(_items())
    assert service.requests == ["hang", "ok"] and len(results) == 3


@pytest.mark.parametrize("service", [[]], indirect=True)
def test_a_refusal_is_not_retried(service):
    with pytest.raises(RewardServiceError, match="401") as caught:
        RewardClient(service.url, "quality", token="wrong", retries=3, backoff_s=0.05).score(_items())
    assert not caught.value.transient and service.requests == [401]


def test_retry_settings_are_checked():
    with pytest.raises(ValueError, match="retries and backoff_s"):
        RewardClient("http://127.0.0.1:1", "quality", token=TOKEN, retries=-1)
