"""`s2 serve-rewards` as a user runs it: it starts with no misleading line, answers, and SIGTERM stops it (its Ray,
Serve's controller and proxy with it) within 10 s."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_sigterm_stops_the_services_within_10_s_and_start_up_says_nothing_misleading(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "S2_REWARDS_TOKEN": "t", "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    err = (tmp_path / "stderr").open("w")
    service = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve-rewards", "--profile", "local", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not healthy(url):
            assert service.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline, "the services did not start in 300 s"
            time.sleep(1)
        start = time.monotonic()
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
        stopped_s = time.monotonic() - start
        log = (tmp_path / "stderr").read_text()
        assert code == 0 and stopped_s < STOP_WITHIN_S, f"stopped in {stopped_s:.1f} s, rc {code}:\n{log}"
        assert not healthy(url)
        assert "New http_options/controller_options will not be applied" not in log
        assert "failed to shut down" not in log
        assert log.rstrip().endswith("reward services stopped")
    finally:
        try:
            os.killpg(service.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        err.close()
