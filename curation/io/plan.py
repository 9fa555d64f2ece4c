"""The run plan: inputs fixed in order and grouped into work units, stored with the output.

A restarted run reads the stored plan instead of listing again, so units keep their inputs even if
files were added meanwhile, and refuses to continue under a configuration that changes results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import storage
from schemas.config import CurateConfig

PLAN_FILE = "_run/plan.json"
UNITS_DIR = "_units"


class PlanMismatchError(RuntimeError):
    pass


def config_fingerprint(cfg: CurateConfig) -> str:
    """Hash of everything that changes results: not paths, Ray settings or resources."""

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("resources", "device")}
        return node

    data = strip(cfg.model_dump(mode="json", exclude={"input", "output", "ray"}))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RunPlan:
    inputs: list[dict]  # each with 'uri', 'index', 'unit'
    fingerprint: str
    inputs_per_unit: int

    @property
    def units(self) -> dict[int, int]:
        """unit -> number of inputs."""
        out: dict[int, int] = {}
        for item in self.inputs:
            out[item["unit"]] = out.get(item["unit"], 0) + 1
        return out

    @classmethod
    def create(cls, items: list[dict], cfg: CurateConfig) -> RunPlan:
        per = cfg.shards.inputs_per_unit
        inputs = [{**item, "index": i, "unit": i // per} for i, item in enumerate(items)]
        return cls(inputs, config_fingerprint(cfg), per)

    def save(self, output: str) -> None:
        storage.write_text(
            storage.join(output, PLAN_FILE),
            json.dumps(
                {"fingerprint": self.fingerprint, "inputs_per_unit": self.inputs_per_unit, "inputs": self.inputs}
            ),
        )

    @classmethod
    def load(cls, output: str) -> RunPlan | None:
        uri = storage.join(output, PLAN_FILE)
        if not storage.exists(uri):
            return None
        data = json.loads(storage.read_text(uri))
        return cls(data["inputs"], data["fingerprint"], data["inputs_per_unit"])


def unit_record_uri(output: str, unit: int) -> str:
    return storage.join(output, UNITS_DIR, f"unit-{unit:06d}.json")


def completed_units(output: str, plan: RunPlan) -> set[int]:
    return {u for u in plan.units if storage.exists(unit_record_uri(output, u))}


def load_plan(cfg: CurateConfig) -> RunPlan | None:
    """The plan of an earlier run into the same output (None for a new run); a different configuration is refused."""
    plan = RunPlan.load(cfg.output)
    if plan is not None and plan.fingerprint != config_fingerprint(cfg):
        raise PlanMismatchError(
            f"{cfg.output} holds a run made with a different configuration (fingerprint {plan.fingerprint}); "
            "resume with the same configuration, or write to a new output"
        )
    return plan
