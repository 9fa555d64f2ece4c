"""The run plan: inputs fixed in order and grouped into work units, stored with the output.

A restarted run reads the stored plan instead of listing again, so units keep their inputs even if files were added
meanwhile, and refuses to continue under a configuration that changes results. The plan is stored in two parts:
`_run/plan.json`, small (the fingerprint and the number of inputs per unit: what the driver needs), written last,
and `_run/plan.parquet`, the inputs themselves, one row group per unit, read a unit at a time (ranged reads on S3)
by the workers that decode it: the driver never holds every input of a resumed run. A unit is complete when its
record is in `_units/`, all of which one listing finds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import storage
from schemas.config import CurateConfig

PLAN_FILE = "_run/plan.json"
PLAN_INPUTS = "_run/plan.parquet"
UNITS_DIR = "_units"
INPUT_COLUMNS = [
    ("uri", "string"), ("index", "int64"), ("unit", "int64"), ("size", "int64"),
    ("sidecar_uri", "string"), ("text", "string"), ("speaker", "string"), ("language", "string"),
]  # fmt: skip
_RECORD = re.compile(r"^unit-(\d+)\.json$")


class PlanMismatchError(RuntimeError):
    pass


def _device_kind(spec: dict, gpus: float) -> str:
    """'cpu' or 'cuda': the kernels a model runs on. 'auto' is cuda only where the stage's actors get a GPU (Ray hides
    GPUs from an actor that asks for none); which GPU ('cuda:1') does not change results."""
    device = spec["device"]
    return "cuda" if device.startswith("cuda") or (device == "auto" and gpus > 0) else "cpu"


def config_fingerprint(cfg: CurateConfig) -> str:
    """Hash of everything that changes results, and of nothing else: not paths, the profile's name, Ray settings,
    resources, failure settings, or batch sizes (each model's results do not depend on its batch: the determinism
    test); a model's device kind (cpu or cuda) and, on cuda only, its dtype (CPUs always run float32) do."""
    data = cfg.model_dump(mode="json", exclude={"input", "output", "profile", "ray", "failure"})
    fused = cfg.ray.fuse_stages

    def strip(node, gpus: float = 0.0):
        if not isinstance(node, dict):
            return node
        if "resources" in node:
            gpus = fused.num_gpus if fused is not None else node["resources"]["num_gpus"]
        if {"name", "device", "dtype", "batch_size"} <= set(node):  # a ModelSpec
            kind = _device_kind(node, gpus)
            rest = {k: strip(v, gpus) for k, v in node.items() if k not in ("device", "dtype", "batch_size")}
            return {**rest, "device": kind, **({"dtype": node["dtype"]} if kind == "cuda" else {})}
        return {k: strip(v, gpus) for k, v in node.items() if k != "resources"}

    return hashlib.sha256(json.dumps(strip(data), sort_keys=True).encode()).hexdigest()[:16]


class _RangedFile(io.RawIOBase):
    """A seekable read-only view of a stored file of known size, read by ranges (what a Parquet reader asks for)."""

    def __init__(self, uri: str, size: int):
        self.uri, self.size, self.pos = uri, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        data = storage.read_range(self.uri, self.pos, min(len(buffer), self.size - self.pos))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


@dataclass
class RunPlan:
    fingerprint: str
    inputs_per_unit: int
    units: dict[int, int]  # unit -> number of inputs
    inputs_bytes: int = 0  # size of the stored plan.parquet
    inputs: list[dict] = field(default_factory=list)  # each with 'uri', 'index', 'unit'; held only by a new plan

    @property
    def n_inputs(self) -> int:
        return sum(self.units.values())

    @classmethod
    def create(cls, items: list[dict], cfg: CurateConfig) -> RunPlan:
        per = cfg.shards.inputs_per_unit
        inputs = [{**item, "index": i, "unit": i // per} for i, item in enumerate(items)]
        units: dict[int, int] = {}
        for item in inputs:
            units[item["unit"]] = units.get(item["unit"], 0) + 1
        return cls(config_fingerprint(cfg), per, units, inputs=inputs)

    def save(self, output: str) -> None:
        """The inputs first, a row group per unit, then plan.json: a plan exists once both do."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in INPUT_COLUMNS])
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            with pq.ParquetWriter(tmp.name, schema) as writer:
                for unit in sorted(self.units):
                    lo = unit * self.inputs_per_unit
                    rows = self.inputs[lo : lo + self.units[unit]]
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema), row_group_size=len(rows))
            tmp.flush()
            self.inputs_bytes = os.path.getsize(tmp.name)
            storage.put_file(tmp.name, storage.join(output, PLAN_INPUTS))
        storage.write_text(
            storage.join(output, PLAN_FILE),
            json.dumps(
                {
                    "fingerprint": self.fingerprint,
                    "inputs_per_unit": self.inputs_per_unit,
                    "units": [self.units[u] for u in sorted(self.units)],
                    "inputs_bytes": self.inputs_bytes,
                }
            ),
        )

    @classmethod
    def load(cls, output: str) -> RunPlan | None:
        uri = storage.join(output, PLAN_FILE)
        if not storage.exists(uri):
            return None
        data = json.loads(storage.read_text(uri))
        if "inputs_bytes" not in data:
            raise PlanMismatchError(f"{output} holds a run planned by an older version; write to a new output")
        units = dict(enumerate(data["units"]))
        return cls(data["fingerprint"], data["inputs_per_unit"], units, data["inputs_bytes"])


def unit_inputs(output: str, plan: RunPlan, unit: int) -> list[dict]:
    """The inputs of one unit, read from the stored plan (its row group only)."""
    import pyarrow.parquet as pq

    if plan.inputs:
        lo = unit * plan.inputs_per_unit
        return plan.inputs[lo : lo + plan.units[unit]]
    source = _RangedFile(storage.join(output, PLAN_INPUTS), plan.inputs_bytes)
    rows = pq.ParquetFile(io.BufferedReader(source, 1 << 20)).read_row_group(unit).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def unit_record_uri(output: str, unit: int) -> str:
    return storage.join(output, UNITS_DIR, f"unit-{unit:06d}.json")


def completed_units(output: str) -> set[int]:
    """The units whose completion record is written: one listing of `_units/`."""
    return {
        int(m.group(1)) for name in storage.list_names(storage.join(output, UNITS_DIR)) if (m := _RECORD.match(name))
    }


def load_plan(cfg: CurateConfig) -> RunPlan | None:
    """The plan of an earlier run into the same output (None for a new run); a different configuration is refused."""
    plan = RunPlan.load(cfg.output)
    if plan is not None and plan.fingerprint != config_fingerprint(cfg):
        raise PlanMismatchError(
            f"{cfg.output} holds a run made with a different configuration (fingerprint {plan.fingerprint}); "
            "resume with the same configuration, or write to a new output"
        )
    return plan


def iter_unit_inputs(output: str, plan: RunPlan, units) -> Iterator[dict]:
    for unit in sorted(units):
        yield from unit_inputs(output, plan, unit)
