"""Shared fixtures. Ray tests share one local Ray per session (started on first use)."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples" / "audio"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on 127.0.0.1, reached over HTTP through the standard AWS
    environment. Started before Ray so that Ray's workers inherit the endpoint and credentials."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server):
    """A fresh bucket per test."""
    import uuid

    from storage import s3_client

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_session(s3_server):
    from pipelines.ray_env import ensure_ray

    ensure_ray(num_cpus=2)
    import ray

    yield ray  # stopped in pytest_unconfigure, once the summary is out


# A test that hangs (a Ray job waiting for resources that never free: seen in CI, where it held the run for its whole
# 90 minutes) ends the suite with every thread's stack and its name. A timer thread, since a signal does not reach a
# driver blocked inside Ray Train's fit(); the processes this session started (Ray's, the S3 server) go with it.
TEST_LIMIT_S = 600


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    timer = threading.Timer(TEST_LIMIT_S, _hung, args=(item.config, item.nodeid))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _hung(config: pytest.Config, nodeid: str) -> None:
    config.pluginmanager.getplugin("capturemanager").suspend_global_capture(in_=True)  # say it on the terminal
    print(f"\n{nodeid} ran past {TEST_LIMIT_S} s; its threads:", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr)
    _kill_started_processes()
    os._exit(1)


def _kill_started_processes() -> None:
    """The processes this session started, by id: the local Ray's and the S3 server (listed before any is killed:
    Ray's agents leave the tree once the raylet is gone)."""
    import psutil

    started = psutil.Process().children(recursive=True)
    for process in started:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(started, timeout=10)


# Ray 2.x can hang for good in ray.shutdown() closing its GCS subscribers (a gRPC call without a deadline:
# ray-project/ray#44836, #45044; seen 3 times at the end of this suite with every test passed). A bounded
# wait (a clean shutdown takes seconds), then an exit with pytest's own status, so a finished suite never hangs CI.
RAY_SHUTDOWN_S = 30
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config):
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return
    stopper = threading.Thread(target=ray.shutdown, daemon=True)
    stopper.start()
    stopper.join(RAY_SHUTDOWN_S)
    if stopper.is_alive():
        print(
            f"ray.shutdown() hung for {RAY_SHUTDOWN_S} s (a Ray bug): exiting without it", file=sys.stderr, flush=True
        )
        _kill_started_processes()
        os._exit(config.stash.get(_EXIT_STATUS, 1))


@pytest.fixture(scope="session")
def tiny_htdemucs(tmp_path_factory) -> Path:
    import torch

    from tests.tiny_models import build_htdemucs

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_htdemucs(tmp_path_factory.mktemp("htdemucs") / "tiny.safetensors")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_codec_dir(tmp_path_factory) -> Path:
    """A folder holding a tiny random codec, written by `s2 codec init --tiny` (the real save path)."""
    import warnings

    from jobs.codec import main as codec_main

    folder = tmp_path_factory.mktemp("codec")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it says, as it should, that its weights are random
        assert codec_main(["init", "--tiny", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def tiny_w2vbert(tmp_path_factory) -> Path:
    from tests.tiny_models import build_w2vbert

    return build_w2vbert(tmp_path_factory.mktemp("w2vbert"))


@pytest.fixture(scope="session")
def tiny_qwen3_omni(tmp_path_factory) -> Path:
    import torch

    from tests.tiny_models import build_qwen3_omni_thinker

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threads only add spin-wait overhead
    try:
        return build_qwen3_omni_thinker(tmp_path_factory.mktemp("qwen3_omni_thinker"))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models gain nothing from intra-op threads, and OpenMP spin-waits stall them on a busy machine: a module
    that asks (pytestmark usefixtures) runs torch on one thread, and gets the previous count back after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
