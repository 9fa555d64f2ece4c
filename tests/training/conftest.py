"""Fixtures of the training tests: one thread, the tiny tokenizer, a set of tiny shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training.tiny import CODES, N, make_samples, write_shards


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only spin
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer():
    """(tokenizer, TokenIds): bytes, control tokens and 16 semantic tokens, as init_tiny lays them out."""
    from models.dual_ar.tokens import TokenIds, byte_level_tokenizer, extend_tokenizer

    tok = extend_tokenizer(byte_level_tokenizer(), CODES)
    return tok, TokenIds.from_tokenizer(tok, CODES)


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """index.json of 16 samples from 2 sources in 4 shards of 4."""
    return write_shards(tmp_path_factory.mktemp("shards"), make_samples(16, num_codebooks=N, codebook_size=CODES), 4)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A one-layer random-init checkpoint whose vocabulary and codebooks fit the tiny shards."""
    from models.dual_ar.tiny import init_tiny

    return init_tiny(tmp_path_factory.mktemp("tiny_dual_ar"), 0, num_codebooks=N, codebook_size=CODES, n_layer=1)


@pytest.fixture
def tiny_model(tiny_model_dir):
    from models.dual_ar.checkpoint import from_s2_checkpoint

    return from_s2_checkpoint(tiny_model_dir)[0].train()
