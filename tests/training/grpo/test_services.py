"""The loop takes the rewards in-process or through the reward services' URL (`s2 serve-rewards`, started on
127.0.0.1 by pipelines/serve_rewards.py) with the same results: the same rewards, components and losses."""

from __future__ import annotations

import json
import socket

import pytest

from schemas.rewards import TOKEN_ENV
from tests.training.grpo.conftest import grpo_config

pytestmark = pytest.mark.ray

TOKEN = "grpo-test-token-0123"
# the three model replicas share the test session's 2-CPU Ray
SETTINGS = [f"service.{k}.num_cpus=0.25" for k in ("stt", "quality", "similarity")]
# DNSMOS and resemblyzer: deterministic models (pocketsphinx's confidences move with its decoder's past)
LAYER = {"rewards": {"weights": {"quality": 1.0, "similarity": 1.0}}}
RUN = ("runtime.steps=2", "runtime.group_size=4", "runtime.prompts_per_step=1", "sampling.max_new_tokens=24")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_services_url_gives_the_in_process_results(ray_session, prompts_file, tmp_path, monkeypatch):
    from ray import serve

    from jobs.serve_rewards import rewards_config
    from models.rewards.client import RewardClient
    from pipelines.serve_rewards import start
    from training.grpo.loop import train_grpo
    from training.grpo.rewards import build_rewards

    voiced = tmp_path / "voiced.jsonl"
    voiced.write_text("".join(line for line in prompts_file.read_text().splitlines(True) if "reference_audio" in line))
    local = grpo_config(voiced, tmp_path / "local", *RUN, layer=LAYER)
    resolved = rewards_config(local.rewards.profile, job=local.rewards.service_layer())
    url = start(
        rewards_config(local.rewards.profile, job=local.rewards.service_layer(), overrides=SETTINGS),
        TOKEN,
        "127.0.0.1",
        _free_port(),
    )
    try:
        train_grpo(local, build_rewards(local.rewards, resolved))
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        remote = grpo_config(voiced, tmp_path / "remote", *RUN, f"rewards.url={url}", layer=LAYER)
        clients = build_rewards(remote.rewards)
        assert {name: type(r) for name, r in clients.items()} == {"quality": RewardClient, "similarity": RewardClient}
        train_grpo(remote, clients)
    finally:
        serve.shutdown()

    def lines(run: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / run / "rewards.jsonl").read_text().splitlines()]

    for a, b in zip(lines("local"), lines("remote"), strict=True):
        assert (a["errors"], a["error"], a["frames"]) == (b["errors"], b["error"], b["frames"])
        assert set(a["components"]) == set(b["components"]) >= {"quality", "similarity", "similarity.cosine"}
        for key, value in a["components"].items():
            assert b["components"][key] == pytest.approx(value, abs=1e-5), key
        for key in ("total", "loss", "loss_slow", "loss_fast", "kl_slow", "kl_fast", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
