"""A GRPO run killed with SIGKILL mid-run, then started again with the same command (`s2 grpo --config`), resumes from
its last checkpoint and logs exactly the rewards and losses of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.training.grpo.conftest import grpo_config

ROOT = Path(__file__).resolve().parents[3]
# `s2 grpo ...` as jobs/cli.py dispatches it: the subcommand's register() and func
S2_GRPO = (
    "import argparse, sys; from jobs import grpo; p = argparse.ArgumentParser(prog='s2'); "
    "grpo.register(p.add_subparsers(dest='command', required=True)); a = p.parse_args(); sys.exit(a.func(a))"
)
STEPS, CKPT = 8, 3
LOGGED_ONLY = {"timeline", "decoded", "cache_hits"}  # timings, and cache statistics of this process's cache


def test_sigkill_then_the_same_command_resumes_exactly(demo_run, prompts_file, tmp_path):
    out = tmp_path / "run"
    config = grpo_config(prompts_file, out, f"runtime.steps={STEPS}", f"runtime.ckpt_every={CKPT}")
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    command = [sys.executable, "-c", S2_GRPO, "grpo", "--config", str(tmp_path / "grpo.yaml")]

    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 600
    while not latest.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]  # still running when its first checkpoint lands
    os.kill(first.pid, signal.SIGKILL)  # only the process this test started
    first.wait()
    first.stderr.close()
    assert first.returncode == -signal.SIGKILL
    killed_at = int(latest.read_text().removeprefix("step-"))
    assert CKPT <= killed_at < STEPS

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["resumed_from"] == killed_at and summary["last"]["step"] == STEPS

    resumed = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    _, uninterrupted, _ = demo_run  # the same settings, 16 steps: its first 8 are this run's
    assert [line["step"] for line in resumed] == list(range(1, STEPS + 1))
    for got, want in zip(resumed, uninterrupted[:STEPS]):
        assert {k: v for k, v in got.items() if k not in LOGGED_ONLY} == {
            k: v for k, v in want.items() if k not in LOGGED_ONLY
        }, got["step"]
        assert got["decoded"] + got["cache_hits"] == want["decoded"] + want["cache_hits"]
