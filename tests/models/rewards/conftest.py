from __future__ import annotations

import pytest
import torch

from jobs.serve_rewards import rewards_config
from models.rewards import Wrappers


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models gain nothing from intra-op threads, and OpenMP spin-waits stall them on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def local_cfg():
    """The local profile's rewards: the very specs `s2 curate` runs (pocketsphinx, DNSMOS, resemblyzer)."""
    return rewards_config("local")


@pytest.fixture(scope="session")
def local_models(local_cfg):
    """The local wrappers, loaded once for every reward test."""
    return Wrappers(local_cfg)
