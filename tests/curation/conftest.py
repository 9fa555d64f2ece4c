"""Fixtures shared by the curation tests."""

import pytest

from tests.badfiles import make_bad_inputs


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory):
    """(folder, {file name: expected reject reason or None}) of awkward and broken inputs."""
    root = tmp_path_factory.mktemp("bad")
    return root, make_bad_inputs(root)
