"""The run plan: stored as plan.json and plan.parquet (a row group per unit, read a unit at a time, locally and by
ranged reads on S3); completion by one listing; a resume refused exactly when results would change; settings that
could overflow a segment key refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import storage
from curation.io.plan import (
    PlanMismatchError,
    RunPlan,
    completed_units,
    config_fingerprint,
    load_plan,
    unit_inputs,
    unit_record_uri,
)
from schemas.config import CurateConfig, layered

BASE = {"input": "in", "output": "out"}


def _cfg(*overrides: str, **layer) -> CurateConfig:
    return layered(CurateConfig, BASE, layer, overrides=list(overrides))


@pytest.mark.parametrize("where", ["local", "s3"])
def test_the_plan_is_read_back_a_unit_at_a_time(tmp_path, where, request):
    output = str(tmp_path) if where == "local" else f"s3://{request.getfixturevalue('bucket')}/run"
    items = [{"uri": f"/in/{i:03d}.wav", "size": i, **({"text": "hello"} if i == 9 else {})} for i in range(10)]
    plan = RunPlan.create(items, _cfg("shards.inputs_per_unit=4"))
    plan.save(output)
    loaded = RunPlan.load(output)
    assert (loaded.units, loaded.inputs, loaded.n_inputs) == ({0: 4, 1: 4, 2: 2}, [], 10)
    assert unit_inputs(output, loaded, 2) == [
        {"uri": "/in/008.wav", "size": 8, "index": 8, "unit": 2},
        {"uri": "/in/009.wav", "size": 9, "index": 9, "unit": 2, "text": "hello"},
    ]
    assert unit_inputs(output, loaded, 0) == unit_inputs(output, plan, 0) == plan.inputs[:4]
    assert completed_units(output) == set()
    for unit in (0, 2):
        storage.write_text(unit_record_uri(output, unit), "{}")
    assert completed_units(output) == {0, 2}


SAME_RESULTS = [
    ("segmentation.resources.batch_size=3", "quality.model.batch_size=5"),  # batch sizes
    ("profile=s2",),  # the profile's name (its models are settings of their own)
    ("ray.fuse_stages=null", "ray.writers.concurrency=3", "failure.window=7"),
    ("quality.model.dtype=bfloat16",),  # on a CPU, which always runs float32
    ("transcription.model.device=auto",),  # auto without a GPU for the stage runs on the CPU
]
OTHER_RESULTS = [
    ("quality.model.device=cuda",),  # other kernels
    ("quality.model.device=auto", "ray.fuse_stages.num_gpus=0.5"),  # auto with a GPU is cuda
    ("quality.thresholds.overall=3.5",),
    ("segmentation.model.checkpoint=/elsewhere",),
    ("shards.inputs_per_unit=8",),  # other units, other shard names
]


@pytest.mark.parametrize("change", SAME_RESULTS, ids=lambda c: c[0])
def test_a_resume_is_accepted_when_results_cannot_change(tmp_path, change):
    RunPlan.create([{"uri": "/a.wav"}], _cfg(output=str(tmp_path))).save(str(tmp_path))
    assert load_plan(_cfg(*change, output=str(tmp_path))) is not None


@pytest.mark.parametrize("change", OTHER_RESULTS, ids=lambda c: "+".join(c))
def test_a_resume_is_refused_when_results_would_change(tmp_path, change):
    RunPlan.create([{"uri": "/a.wav"}], _cfg(output=str(tmp_path))).save(str(tmp_path))
    with pytest.raises(PlanMismatchError, match="different configuration"):
        load_plan(_cfg(*change, output=str(tmp_path)))


def test_dtype_counts_on_a_gpu_and_which_gpu_does_not():
    cuda = ("quality.model.device=cuda",)
    assert config_fingerprint(_cfg(*cuda)) != config_fingerprint(_cfg(*cuda, "quality.model.dtype=bfloat16"))
    assert config_fingerprint(_cfg("quality.model.device=cuda:0")) == config_fingerprint(
        _cfg("quality.model.device=cuda:1")
    )


def test_settings_that_could_overflow_a_segment_key_fail_at_start_naming_the_setting():
    # one-minute pieces of a four-hour input: up to 481 pieces, and a key holds 100
    with pytest.raises(ValidationError, match=r"decode.piece_s: 60 s pieces .* up to 481 pieces, more than the 100"):
        _cfg("decode.piece_s=60")
    assert _cfg("decode.piece_s=60", "decode.max_duration_s=2900").decode.piece_s == 60
    with pytest.raises(ValidationError, match=r"decode.piece_s: a piece of up to 210 s may hold more than 1000"):
        _cfg("segmentation.min_speech_s=0", "segmentation.merge_gap_s=0.1")
    _cfg("decode.piece_s=600")  # the s2 profile's
