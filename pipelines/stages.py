"""Which stages a config runs, at which rates, the start-up check of their weights, and how they are
grouped into actor pools (one per stage, or one chain of all of them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib
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
        return_freed_memory()  # what loading the models left behind (state dicts, layout copies): ~100 MB

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        for stage, size in self.stages:
            if batch["key"]:
                batch = concat([stage(part) for part in slices(batch, size)])
            return_freed_memory()
        return batch


def encoder() -> Callable:
    from curation.shards import encode_audio

    return encode_audio


def encodes_in_actors(cfg: CurateConfig) -> bool:
    """Fused actors end their chain with FLAC encoding: rows leave them compressed, and no task worker process
    is kept for encoding. Per-stage pools leave it to parallel tasks."""
    return cfg.ray.fuse_stages is not None


def actor_groups(cfg: CurateConfig) -> list[tuple[str, Callable, Resources]]:
    """(name, factory, resources) of each actor pool the model stages run in: one per stage, or a single
    pool hosting them all, and the encoder, when `ray.fuse_stages` is set."""
    stages = model_stages(cfg)
    if cfg.ray.fuse_stages is not None:
        chain = [*stages, ModelStage("encode", encoder, Resources(batch_size=16))]
        return [("ModelStages", functools.partial(StageChain, chain), cfg.ray.fuse_stages)]
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


def build_stage(module: str, name: str, *args):
    """Import a stage's module where the stage is built, in its actor: the driver never imports torch or a
    model runtime (~250 MB it would hold for the whole run)."""
    return getattr(importlib.import_module(module), name)(*args)


def model_stages(cfg: CurateConfig) -> list[ModelStage]:
    def stage(name: str, module: str, cls: str, *args) -> ModelStage:
        return ModelStage(name, functools.partial(build_stage, module, cls, *args), getattr(cfg, name).resources)

    stages = []
    if cfg.separation.enabled:
        stages.append(stage("separation", "curation.separation", "SeparationStage", cfg.separation, cfg.decode.sample_rate))
    stages.append(stage("segmentation", "curation.segmentation", "SegmentationStage", cfg.segmentation))
    if cfg.quality.enabled:
        stages.append(stage("quality", "curation.quality", "QualityStage", cfg.quality))
    if cfg.transcription.enabled:
        stages.append(stage("transcription", "curation.transcription", "TranscriptionStage", cfg.transcription))
    return stages
