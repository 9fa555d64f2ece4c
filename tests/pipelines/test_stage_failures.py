"""On Ray, a broken model stops the run: the actor's stage raises StageFailure, Ray retries the task (failure.retries)
and the driver stops with the stage's one line; no completion record claims a unit and the stage actors are gone.
The model is the faulty VAD of tests/curation/faulty_vad.py, built on the workers from its 'module:Class' name."""

import time

import pytest
import ray

from curation.stages.failure import StageFailure
from pipelines.curate import run_curation
from tests.curation.test_failures import faulty_config
from tests.tones import write_tones

pytestmark = pytest.mark.ray


def test_a_model_failing_every_call_stops_the_ray_run_in_one_line(ray_session, tmp_path):
    write_tones(tmp_path / "in", 12)
    free = ray.available_resources()["CPU"]
    cfg = faulty_config(tmp_path / "in", tmp_path / "out", "always", "failure.window=10", "failure.retries=1")
    with pytest.raises(
        StageFailure, match=r"^stage segmentation failed: RuntimeError: faulty vad: the model is broken"
    ):
        run_curation(cfg, progress=False)
    units = tmp_path / "out" / "_units"
    assert not units.exists() or not list(units.iterdir())
    # the failed run's actors are gone: their CPUs come back (a kept actor starved the next job of the session)
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < free and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) >= free
