from __future__ import annotations

import pytest

from jobs.serve_rewards import rewards_config
from models.rewards import Wrappers


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every module here runs torch on one thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def local_cfg():
    """The local profile's rewards: the very specs `s2 curate` runs (pocketsphinx, DNSMOS, resemblyzer)."""
    return rewards_config("local")


@pytest.fixture(scope="session")
def local_models(local_cfg):
    """The local wrappers, loaded once for every reward test."""
    return Wrappers(local_cfg)
