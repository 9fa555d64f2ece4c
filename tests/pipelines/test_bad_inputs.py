"""Awkward and broken files through the pipeline: each is processed or rejected with its reason,
the job never crashes, and the summary reconciles."""

import pyarrow.parquet as pq
import pytest

from pipelines.curate import run_curation
from tests.badfiles import make_bad_inputs, make_long_silence
from tests.pipelines.test_curate_e2e import spine_config

pytestmark = pytest.mark.ray


def test_bad_inputs_end_as_rejects_with_reasons(ray_session, tmp_path):
    src = tmp_path / "in"
    expected = make_bad_inputs(src)
    expected[make_long_silence(src)] = "no_speech"
    summary = run_curation(spine_config(src, tmp_path / "out"), progress=False)

    assert summary["inputs"] == len(expected) == summary["inputs_with_samples"] + summary["inputs_rejected"]
    kept = {r["source_uri"].rsplit("/", 1)[1] for r in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()}
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    reasons = {}
    for r in rejects:
        reasons.setdefault(r["input"].rsplit("/", 1)[1], set()).add(r["reason"])
        assert r["detail"], r
    for name, reason in expected.items():
        if reason is None:
            assert name in kept, (name, reasons.get(name))
        else:
            assert name not in kept and reason in reasons[name], (name, reasons.get(name))
