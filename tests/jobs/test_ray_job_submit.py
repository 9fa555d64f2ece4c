"""`ray job submit` against a local head started with `ray start --head`, as a data engineer would."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    gcs, dash, agent = free_port(), free_port(), free_port()  # no fixed default port: another Ray may run here
    log = open(tmp_path_factory.mktemp("head") / "ray.log", "w")
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            f"--dashboard-port={dash}",
            f"--dashboard-agent-listen-port={agent}",
            "--dashboard-host=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=true",
        ],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dash}"
    t0 = time.time()
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=2)
            break
        except OSError:
            assert head.poll() is None and time.time() - t0 < 90, "ray head did not come up"
            time.sleep(0.5)
    yield url, env
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    log.close()


def test_ray_job_submit_runs_a_curation_job(ray_head, tmp_path):
    url, env = ray_head
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("wenet__librispeech-1995-1837-0001.wav",):
        (src / name).symlink_to(DATA / "speech" / name)
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        url,
        "--working-dir",
        ".",
        "--runtime-env",
        "jobs/runtime_env.yaml",
        "--",
        "python",
        "-m",
        "jobs.curate",
        "--config",
        "jobs/configs/local.yaml",
        "--input",
        str(src),
        "--output",
        str(out),
        "--json",
    ]
    t0 = time.time()
    while True:  # the dashboard answers before its job agent is up: retry that one refusal, bounded
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
        if r.returncode == 0 or "No available agent" not in r.stderr + r.stdout or time.time() - t0 > 90:
            break
        time.sleep(2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "succeeded" in r.stdout
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["inputs"] == 1 and summary["segments_kept"] >= 1
    assert len(pq.read_table(out / "manifest.parquet")) == summary["segments_kept"]
