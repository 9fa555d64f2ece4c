"""Every model stage gives a segment the same result whatever ran before it in the process and whatever batch it is
in. The local profile (Spleeter, silero, DNSMOS, pocketsphinx + resemblyzer, then the source stages) curates the same
inputs twice in this process, each time with fresh stage objects: once in plan order with the default batch sizes,
once in reverse order with other batch sizes at every stage, and DNSMOS scoring several windows per run: the shards are
the same bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.executor import SequentialExecutor
from curation.io.ingest import list_inputs
from curation.io.plan import RunPlan
from curation.run import UnitTarget
from curation.stages.decode import input_rows
from curation.stages.pipeline import CurationPipeline
from schemas.config import CurateConfig, layered
from tests.conftest import DATA

CLIPS = [
    DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0001.wav",
    DATA / "speech" / "pyroomacoustics__cmu_arctic_us_axb_a0004.wav",
    DATA / "speech" / "lhotse__LJ002-0020.wav",
    DATA / "speech" / "leopard__test.wav",
    DATA / "zh" / "fireredasr__BAC009S0764W0121.wav",
]
OTHER_BATCHES = {
    "separation": {"resources": {"batch_size": 2}},
    "segmentation": {"resources": {"batch_size": 3}, "model": {"batch_size": 2}},
    "quality": {"resources": {"batch_size": 2}, "model": {"batch_size": 4}},
    "transcription": {"resources": {"batch_size": 3}, "model": {"batch_size": 2}},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    src = tmp_path_factory.mktemp("in")
    for clip in CLIPS:
        shutil.copy(clip, src / clip.name)
    return src


def _curate(cfg: CurateConfig, reverse: bool) -> dict[str, bytes]:
    pipeline = CurationPipeline.from_config(cfg)
    plan = RunPlan.create(list_inputs(cfg.input, cfg.extensions), cfg)
    rows = input_rows(plan.inputs)
    target = UnitTarget(cfg.output, plan.units, cfg.shards, pipeline.source)
    SequentialExecutor().run(pipeline, rows[::-1] if reverse else rows, target, lambda summary: None)
    return {p.name: p.read_bytes() for p in sorted((Path(cfg.output) / "shards").iterdir())}


def test_the_same_inputs_in_another_order_and_other_batches_give_the_same_shard_bytes(inputs, tmp_path):
    base = {"input": str(inputs), "shards": {"samples_per_shard": 3}}
    first = _curate(layered(CurateConfig, base, {"output": str(tmp_path / "a")}), reverse=False)
    second = _curate(layered(CurateConfig, base, {"output": str(tmp_path / "b")}, OTHER_BATCHES), reverse=True)
    assert len(first) >= 2 and sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], name
