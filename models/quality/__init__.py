"""Speech-quality scorers: one interface, `score(waveforms, sample_rate) -> list[QualityScores]`.

  'dnsmos'   DnsmosScorer          DNSMOS P.835 + P.808 ONNX from the speechmos wheel (local profile, CPU)
  'w2vbert'  W2vBertQualityScorer  w2v-BERT 2.0 + trained MLP head (s2 profile, GPU); head from train_quality_head

Every scorer has `model_id`, `sample_rate` (16000), `dimensions` (the QualityScores fields it fills) and is
deterministic for the same input. Implementations are imported on first use: DNSMOS needs no torch, and a
process that only checks weights (the driver) needs neither.
"""

from __future__ import annotations

import importlib

from schemas.config import ModelSpec

# scorer name -> (module, class, the module's weight check); public names -> their module
SCORERS = {
    "dnsmos": ("models.quality.dnsmos", "DnsmosScorer", "model_dir"),
    "w2vbert": ("models.quality.w2vbert", "W2vBertQualityScorer", "check_available"),
}
_EXPORTS = {cls: module for module, cls, _ in SCORERS.values()} | {name: "models.quality.training" for name in ("TrainResult", "train_quality_head")}

__all__ = [*_EXPORTS, "load_quality_scorer", "preflight"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _module(spec: ModelSpec):
    if spec.name not in SCORERS:
        raise ValueError(f"quality.model.name: unknown quality scorer {spec.name!r}; known: {', '.join(SCORERS)}")
    return importlib.import_module(SCORERS[spec.name][0])


def load_quality_scorer(spec: ModelSpec):
    return getattr(_module(spec), SCORERS[spec.name][1])(spec)


def preflight(spec: ModelSpec) -> None:
    """Raise CheckpointUnavailableError (saying how to provide it) if the scorer's weights are missing; loads no model."""
    getattr(_module(spec), SCORERS[spec.name][2])(spec)
