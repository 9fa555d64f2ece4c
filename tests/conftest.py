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
def ray_session():
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
