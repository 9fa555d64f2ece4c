"""Shared fixtures. Ray tests share one local Ray per session (started on first use)."""

from __future__ import annotations

import os
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

    from curation.storage import s3_client

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_session(s3_server):
    from pipelines.ray_env import ensure_ray

    ensure_ray(num_cpus=2)
    import ray

    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_htdemucs(tmp_path_factory) -> Path:
    """A randomly initialised 16 kHz HTDemucs (7k parameters) saved as a demucs .safetensors checkpoint."""
    import torch
    from demucs.htdemucs import HTDemucs

    from models.separator.demucs import save_demucs

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=2, nfft=512, t_layers=1, t_heads=1, segment=2, samplerate=16000, dconv_depth=1, dconv_comp=2)
    path = tmp_path_factory.mktemp("htdemucs") / "tiny.safetensors"
    save_demucs(model, path)
    return path
