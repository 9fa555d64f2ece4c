"""Speech-quality scorers: one interface, `score(waveforms, sample_rate) -> list[QualityScores]`.

  'dnsmos'   DnsmosScorer          DNSMOS P.835 + P.808 ONNX from the speechmos wheel (local profile, CPU)
  'w2vbert'  W2vBertQualityScorer  w2v-BERT 2.0 + trained MLP head (s2 profile, GPU); head from train_quality_head

Every scorer has `model_id`, `sample_rate` (16000), `dimensions` (the QualityScores fields it fills) and is
deterministic for the same input.
"""

from __future__ import annotations

from models.quality.dnsmos import DnsmosScorer, model_dir
from models.quality.training import TrainResult, train_quality_head
from models.quality.w2vbert import W2vBertQualityScorer, check_available
from schemas.config import ModelSpec

SCORERS = {"dnsmos": DnsmosScorer, "w2vbert": W2vBertQualityScorer}

__all__ = ["DnsmosScorer", "W2vBertQualityScorer", "TrainResult", "load_quality_scorer", "preflight", "train_quality_head"]


def _known(spec: ModelSpec) -> None:
    if spec.name not in SCORERS:
        raise ValueError(f"quality.model.name: unknown quality scorer {spec.name!r}; known: {', '.join(SCORERS)}")


def load_quality_scorer(spec: ModelSpec) -> DnsmosScorer | W2vBertQualityScorer:
    _known(spec)
    return SCORERS[spec.name](spec)


def preflight(spec: ModelSpec) -> None:
    """Raise CheckpointUnavailableError (saying how to provide it) if the scorer's weights are missing; loads no model."""
    _known(spec)
    if spec.name == "dnsmos":
        model_dir(spec)
    else:
        check_available(spec)
