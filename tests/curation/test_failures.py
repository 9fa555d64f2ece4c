"""Which failures are rejects and which stop the run, through a whole sequential run of decode and VAD with a faulty
VAD (tests/curation/faulty_vad.py) named in the config like any model. The Ray path (retries, the one line on the
driver) is tests/pipelines/test_stage_failures.py."""

from __future__ import annotations

import json

import pytest

from curation.executor import SequentialExecutor
from curation.run import curate
from curation.stages.failure import StageFailure
from schemas.config import CurateConfig, layered
from tests.tones import write_tones

FAULTY = "tests.curation.faulty_vad:FaultyVad"


def faulty_config(inputs, output, fail, *overrides: str) -> CurateConfig:
    return layered(
        CurateConfig,
        {"input": str(inputs), "output": str(output)},
        {"segmentation": {"model": {"name": FAULTY, "options": {"fail": fail}}}},
        overrides=["separation.enabled=false", "quality.enabled=false", "transcription.enabled=false", *overrides],
    )


def test_a_model_that_refuses_one_input_in_fifty_leaves_those_rows_rejected_and_the_run_complete(tmp_path):
    write_tones(tmp_path / "in", 100)
    summary = curate(faulty_config(tmp_path / "in", tmp_path / "out", 50), SequentialExecutor())
    # inputs 0 and 50 (100 and 150 steps of 10 ms) are refused; the other 98 are kept
    assert summary["rejects_by_reason"] == {"segmentation/stage_failed": 2}
    assert summary["inputs"] == 100 and summary["segments_kept"] == 98


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        # a model failing every row: the breaker stops the stage once more than half of its first 10 rows failed
        (
            "always",
            r"^stage segmentation failed: RuntimeError: faulty vad: the model is broken \(6 of the first 6 rows",
        ),
        # an infrastructure error stops it at the first batch
        ("ImportError", r"^stage segmentation failed: ImportError: faulty vad: .* \(infrastructure error on a batch"),
    ],
    ids=["breaker", "infrastructure"],
)
def test_a_broken_model_stops_the_run_in_one_line_and_no_unit_is_recorded(tmp_path, fail, message):
    write_tones(tmp_path / "in", 20)
    cfg = faulty_config(tmp_path / "in", tmp_path / "out", fail, "failure.window=10")
    with pytest.raises(StageFailure, match=message) as caught:
        curate(cfg, SequentialExecutor())
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out" / "_units").exists() or not list((tmp_path / "out" / "_units").iterdir())
    assert json.loads((tmp_path / "out" / "_run" / "plan.json").read_text())  # the plan stands: a rerun resumes
