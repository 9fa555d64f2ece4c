"""The stage contract: call_model batches by sample rate and isolates a failing row; the error policy decides
whether a failure is a reject or an exception."""

import numpy as np
import pytest

from curation.row import Row
from curation.stages.base import CurationStage
from schemas.config import Resources
from schemas.rejects import RejectReason, Stage
from tests.factories import segment_row

BAD = 13  # the model fails on a waveform of this many samples


class Model:
    """Halves its inputs; records each call as (rate, lengths); raises on a BAD-sample waveform."""

    def __init__(self, wrong_count: bool = False):
        self.calls: list[tuple[int, list[int]]] = []
        self.wrong_count = wrong_count

    def __call__(self, waves: list[np.ndarray], rate: int) -> list[np.ndarray]:
        self.calls.append((rate, [len(w) for w in waves]))
        if any(len(w) == BAD for w in waves):
            raise RuntimeError("model failure")
        out = [w / 2 for w in waves]
        return out[:-1] if self.wrong_count and len(out) > 1 else out


class Halving(CurationStage):
    name = Stage.QUALITY
    reads = ("audio", "sample_rate")
    writes = ("audio",)

    def __init__(self, model: Model, on_error="reject"):
        super().__init__(Resources(batch_size=4), on_error)
        self.model = model

    def process_batch(self, rows: list[Row]) -> list[Row]:
        self.results = self.call_model(
            [r for r in rows if r.live], self.model, RejectReason.QUALITY_FAILED, full_band=True
        )
        for row, out in self.results:
            row.set_waveform(out, row.sample_rate)
        return rows


def _rows(spec: list[tuple[int, int]]) -> list[Row]:
    """A row per (length, rate), each a constant 0.5."""
    return [segment_row(np.full(n, 0.5, np.float32), rate, i) for i, (n, rate) in enumerate(spec)]


def test_call_model_calls_once_per_sample_rate_and_returns_results_in_input_order():
    model = Model()
    stage = Halving(model)
    rows = _rows([(10, 16000), (20, 8000), (30, 16000), (40, 8000)])
    assert stage(rows) is not None and stage.batch_size == 4
    assert model.calls == [(16000, [10, 30]), (8000, [20, 40])]
    assert [r.key for r, _ in stage.results] == [r.key for r in rows]
    assert all(r.live and np.allclose(r.waveform(), 0.25) for r in rows)


def test_a_failing_row_is_retried_alone_and_rejected_and_the_rest_of_its_group_is_kept():
    model = Model()
    stage = Halving(model)
    rows = _rows([(10, 16000), (BAD, 16000), (30, 16000), (20, 8000)])
    stage(rows)
    # the 16 kHz call fails, so its rows go one at a time; the 8 kHz group is not affected
    assert model.calls == [(16000, [10, BAD, 30]), (16000, [10]), (16000, [BAD]), (16000, [30]), (8000, [20])]
    assert [r.live for r in rows] == [True, False, True, True]
    r = rows[1].reject
    assert (r.stage, r.reason, r.detail, r.key) == (
        "quality",
        "quality_failed",
        "RuntimeError: model failure",
        rows[1].key,
    )
    assert rows[1].audio == b"" and [row.key for row, _ in stage.results] == [rows[0].key, rows[2].key, rows[3].key]


def test_a_model_that_returns_the_wrong_number_of_results_is_retried_row_by_row():
    model = Model(wrong_count=True)
    rows = _rows([(10, 16000), (30, 16000)])
    Halving(model)(rows)
    assert model.calls == [(16000, [10, 30]), (16000, [10]), (16000, [30])]
    assert all(r.live and np.allclose(r.waveform(), 0.25) for r in rows)


def test_rejected_rows_are_not_offered_to_the_model():
    model = Model()
    rows = _rows([(10, 16000), (20, 16000)])
    rows[0].rejected(Stage.SEGMENTATION, RejectReason.NO_SPEECH)
    Halving(model)(rows)
    assert model.calls == [(16000, [20])] and rows[0].reject.stage == "segmentation"


@pytest.mark.parametrize("spec", [[(BAD, 16000)], [(10, 16000), (BAD, 16000)]], ids=["alone", "in-a-group"])
def test_on_error_raise_propagates_the_failure(spec):
    model = Model()
    rows = _rows(spec)
    with pytest.raises(RuntimeError, match="model failure"):
        Halving(model, on_error="raise")(rows)
    assert all(r.reject is None for r in rows)


def test_fail_applies_the_error_policy_to_one_row():
    row = _rows([(10, 16000)])[0]
    Halving(Model()).fail(row, RejectReason.STAGE_FAILED, ValueError("bad value"))
    assert (row.reject.reason, row.reject.detail) == ("stage_failed", "ValueError: bad value")
    other = _rows([(10, 16000)])[0]
    with pytest.raises(ValueError, match="bad value"):
        Halving(Model(), on_error="raise").fail(other, RejectReason.STAGE_FAILED, ValueError("bad value"))
    assert other.live
