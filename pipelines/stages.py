"""Which stages a config runs, at which rates, the start-up check of their weights, and how they are
grouped into actor pools (one per stage, or one chain of all of them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

from curation.batch import Batch, as_lists, concat, slices
from schemas.config import CurateConfig, Resources


@dataclass
class ModelStage:
    name: str
    factory: Callable  # builds the stage (loads the model) inside the actor
    resources: Resources


# glibc only (musl and macOS have no malloc_trim)
_MALLOC_TRIM = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None) if sys.platform.startswith("linux") else None


def return_freed_memory() -> None:
    """Hand what a stage freed (activations, audio) back to the OS. glibc keeps freed memory in its arenas
    otherwise, so a process would hold every stage's largest footprint at once for the rest of the run."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class StageChain:
    """Model stages in one process, in order, each called on slices of its own batch size (a piece
    explodes into many segments at segmentation; quality and transcription batch those)."""

    def __init__(self, stages: list[ModelStage]):
        self.stages = [(s.factory(), s.resources.batch_size) for s in stages]

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        for stage, size in self.stages:
            if batch["key"]:
                batch = concat([stage(part) for part in slices(batch, size)])
            return_freed_memory()
        return batch


def actor_groups(cfg: CurateConfig) -> list[tuple[str, Callable, Resources]]:
    """(name, factory, resources) of each actor pool the model stages run in: one per stage, or a single
    pool hosting them all when `ray.fuse_stages` is set."""
    stages = model_stages(cfg)
    if cfg.ray.fuse_stages is not None:
        return [("ModelStages", functools.partial(StageChain, stages), cfg.ray.fuse_stages)]
    return [(s.name.title(), functools.partial(StageChain, [s]), s.resources) for s in stages]


def decode_rate(cfg: CurateConfig) -> tuple[int, bool]:
    """(rate, upsample) for decode. With separation, the separator's own rate, where a source below it keeps
    its rate (the separator resamples what it gets: a 16 kHz source travels at 16 kHz, not 44.1); else
    segmentation's rate exactly. Either way every input is resampled once at most."""
    if cfg.separation.enabled:
        from models.separator import separator_sample_rate

        return separator_sample_rate(cfg.separation.model), False
    return cfg.decode.sample_rate, True


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
