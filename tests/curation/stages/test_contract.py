"""The stage contract is enforced: every stage of STAGES, run on real inputs with the local profile's models (and the
tiny codec), reads and writes only the Row fields its declaration names. Reads are traced on the row while the stage's
`process_batch` (or `process_source`) runs; writes are the fields that differ afterwards from a copy taken before.

Reading a row's identity (key, source_uri, input_index, unit, piece) and rejecting it are every stage's right.
'audio' covers its encoding, 'analysis' its rate, 'sample' every field of the Sample."""

from __future__ import annotations

import copy
import dataclasses
import shutil

import numpy as np
import pytest
import soundfile as sf

from curation.io.ingest import list_inputs
from curation.io.plan import RunPlan
from curation.row import Row
from curation.stages.base import CurationStage
from curation.stages.decode import input_rows
from curation.stages.pipeline import STAGES, CurationPipeline
from schemas.config import CurateConfig, layered
from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIELDS = {f.name for f in dataclasses.fields(Row)}
IDENTITY = {"key", "source_uri", "input_index", "unit", "piece", "reject"}
COVERS = {"audio": {"encoding"}, "analysis": {"analysis_rate"}}
_trace: set[str] | None = None


class TracedRow(Row):
    """A Row that records which of its fields are read while a trace is on."""

    def __getattribute__(self, name):
        if _trace is not None and name in FIELDS:
            _trace.add(name)
        return object.__getattribute__(self, name)

    def copy(self, **changes):  # copying reads every field without using it
        global _trace
        saved, _trace = _trace, None
        try:
            return super().copy(**changes)
        finally:
            _trace = saved

    def rejected(self, *args, **kwargs):
        global _trace
        saved, _trace = _trace, None
        try:
            return super().rejected(*args, **kwargs)
        finally:
            _trace = saved


def traced(fn):
    """`fn` with a trace on; returns (result, fields read)."""

    def run(*args):
        global _trace
        _trace = set()
        try:
            return fn(*args), _trace
        finally:
            _trace = None

    return run


def changed(before: Row, after: Row) -> set[str]:
    """The fields of `after` that differ from `before`, a Sample's field by field ('sample.x')."""
    out = set()
    for f in FIELDS:
        a, b = object.__getattribute__(before, f), object.__getattribute__(after, f)
        if f == "sample" and a is not None and b is not None:
            out |= {f"sample.{k}" for k in type(a).model_fields if getattr(a, k) != getattr(b, k)}
        elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            out |= {f} if a is None or b is None or not np.array_equal(a, b) else set()
        elif f == "speakers":
            out |= {f} if a is not b else set()
        elif a != b:
            out.add(f)
    return out


def allowed(declared: frozenset[str]) -> set[str]:
    out = set(declared) | {"sample" for d in declared if d.startswith("sample.")}
    for name, covered in COVERS.items():
        if name in declared:
            out |= covered
    return out


def check(stage, rows: list[Row], call) -> list[Row]:
    """Run `call(rows)` (the stage's own method) with tracing; assert it stayed within its declaration."""
    before = {id(r): dataclasses.replace(copy.deepcopy(r), speakers=r.speakers) for r in rows}
    by_input = {(r.input_index, r.piece): before[id(r)] for r in rows}
    out, reads = traced(call)(rows)
    decl = stage.decl
    assert reads - IDENTITY <= allowed(decl.reads), (
        f"{decl.name}: reads {sorted(reads - IDENTITY - allowed(decl.reads))}"
    )
    writes = set()
    for r in out:
        old = before.get(id(r)) or by_input.get((r.input_index, r.piece)) or by_input[(r.input_index, 0)]
        delta = changed(old, r)
        if r.reject is not None and old.reject is None:  # rejected here: the rejection clears the audio
            delta -= {"reject", "audio", "encoding", "analysis", "codes", "speakers"}
        writes |= delta
    declared = allowed(decl.writes) | {w for w in writes if w.startswith("sample.") and "sample" in decl.writes}
    assert writes <= declared, f"{decl.name} ({decl.runs_in}): writes {sorted(writes - declared)}"
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Speech at 22.05 and 48 kHz (so the analysis copy is its own bytes), and the 22.05 kHz one over dishes, so the
    separation gate has a background to separate."""
    root = tmp_path_factory.mktemp("contract")
    for name in ("lhotse__LJ002-0020.wav", "lhotse__common_voice_en_651325.mp3"):
        shutil.copy(DATA / "speech" / name, root / name)
    speech, rate = sf.read(DATA / "speech" / "lhotse__LJ002-0020.wav", dtype="float32")
    noise, noise_rate = sf.read(DATA / "noise" / "dishes_20s.flac", dtype="float32", always_2d=True)
    noise = noise.mean(axis=1)[: len(speech) * noise_rate // rate : noise_rate // rate if noise_rate >= rate else 1]
    noise = np.resize(noise, len(speech))
    sf.write(root / "noisy.wav", speech + 0.5 * noise / max(1e-6, np.abs(noise).max()) * 0.5, rate)
    return root


def _run(cfg: CurateConfig) -> set[int]:
    """Every stage the configuration composes, in order, under `check`; returns the STAGES entries it ran."""
    pipeline = CurationPipeline.from_config(cfg)
    plan = RunPlan.create(list_inputs(cfg.input, cfg.extensions), cfg)
    rows = [TracedRow(**{f.name: getattr(r, f.name) for f in dataclasses.fields(Row)}) for r in input_rows(plan.inputs)]
    rows = check(pipeline.decode, rows, pipeline.decode.process_batch)
    assert all(type(r) is TracedRow for r in rows) and sum(r.live for r in rows) == len(rows)
    for stage in [*pipeline.models, pipeline.encode]:
        stage.setup()
        live = [r for r in rows if r.live]
        rows = [r for r in rows if not r.live] + check(stage, live, stage.process_batch)
    for stage in pipeline.source:
        for idx in sorted({r.input_index for r in rows}):
            check(stage, [r for r in rows if r.input_index == idx], stage.process_source)
    assert any(r.live for r in rows)
    return {s.decl_index for s in pipeline.stages}


def test_every_declared_stage_reads_and_writes_only_what_it_declares(inputs, tmp_path, tiny_codec_dir):
    base = {"input": str(inputs), "output": str(tmp_path / "out")}
    codec = {"codec": {"enabled": True, "model": {"checkpoint": str(tiny_codec_dir), "device": "cpu"}}}
    ran = _run(layered(CurateConfig, base, codec, {"quality": {"thresholds": {}}}))
    ran |= _run(layered(CurateConfig, base, {"separation": {"gate": None}, "transcription": {"enabled": False}}))
    assert ran == set(range(len(STAGES))), [STAGES[i].cls.__name__ for i in set(range(len(STAGES))) - ran]
    assert all(issubclass(d.cls, CurationStage) == (d.runs_in != "writer") for d in STAGES)
