"""Which stages a config runs, at which rates, and the start-up check of their weights."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from schemas.config import CurateConfig, Resources


@dataclass
class ModelStage:
    name: str
    factory: Callable  # builds the stage (loads the model) inside the actor
    resources: Resources


def working_rate(cfg: CurateConfig) -> int:
    """The rate decode produces: the separator's own when separation runs, so nothing is resampled twice."""
    if cfg.separation.enabled:
        from models.separator import separator_sample_rate

        return separator_sample_rate(cfg.separation.model)
    return cfg.decode.sample_rate


def preflight(cfg: CurateConfig) -> None:
    """Fail at start, naming the checkpoint, when an enabled stage's weights are missing."""
    if cfg.separation.enabled:
        from models.separator import preflight as check

        check(cfg.separation.model)
    if cfg.quality.enabled:
        from models.quality import preflight as check

        check(cfg.quality.model)
    if cfg.transcription.enabled:
        from models.asr import preflight as check

        check(cfg.transcription.model)


def model_stages(cfg: CurateConfig) -> list[ModelStage]:
    from curation.segmentation import SegmentationStage

    stages = []
    if cfg.separation.enabled:
        from curation.separation import SeparationStage

        stages.append(ModelStage("separation", functools.partial(SeparationStage, cfg.separation, cfg.decode.sample_rate), cfg.separation.resources))
    stages.append(ModelStage("segmentation", functools.partial(SegmentationStage, cfg.segmentation), cfg.segmentation.resources))
    if cfg.quality.enabled:
        from curation.quality import QualityStage

        stages.append(ModelStage("quality", functools.partial(QualityStage, cfg.quality), cfg.quality.resources))
    if cfg.transcription.enabled:
        from curation.transcription import TranscriptionStage

        stages.append(ModelStage("transcription", functools.partial(TranscriptionStage, cfg.transcription), cfg.transcription.resources))
    return stages
