"""Which stages a configuration runs, in order, at which rates, and the start-up check of all their models.

Stage objects are cheap to build (models load in `setup()`), so the process that plans a run builds them and an
executor ships them wherever they run: the sequential executor calls them in place, the Ray executor sends them to
its actors and tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from curation.policy.diarization import DiarizationParams, diarization_params
from curation.stages.base import CurationStage, GuardedStage
from curation.stages.codec import CodecStage
from curation.stages.decode import DecodeStage
from curation.stages.encode import EncodeStage
from curation.stages.quality import QualityStage
from curation.stages.segmentation import SegmentationStage
from curation.stages.separation import SeparationStage
from curation.stages.source import SourceSpeakers, SourceStage, SpeechRateOutliers
from curation.stages.transcription import TranscriptionStage
from models import registry
from models.checkpoints import CheckpointUnavailableError
from schemas.config import CurateConfig
from schemas.rejects import Stage


class StartupError(ValueError):
    """A configuration that cannot run, found before anything is written; the message names the setting."""


def decode_rate(cfg: CurateConfig) -> int:
    """The most decode writes: a source keeps its own rate up to decode.max_output_rate (full band for the shards and
    the codec; never upsampled). Lower-rate sources are taken to a model's rate by the model itself, once."""
    return cfg.decode.max_output_rate


def _analysis_rate(cfg: CurateConfig) -> int | None:
    """The analysis copy is made where the full-band audio is final before VAD: in decode, or after separation of
    whole pieces (gated separation makes a new copy of the utterances it replaces)."""
    return None if cfg.separation.enabled and cfg.separation.gate is None else cfg.decode.sample_rate


def _separation(cfg: CurateConfig, gated: bool) -> SeparationStage | None:
    sep = cfg.separation
    if not sep.enabled or (sep.gate is not None) != gated:
        return None
    quality = cfg.quality.model if gated and cfg.quality.enabled else None
    return SeparationStage(sep, cfg.decode.sample_rate, cfg.decode.max_output_rate, quality)


def _speakers(cfg: CurateConfig) -> SourceSpeakers | None:
    t = cfg.transcription
    if not t.enabled:
        return None
    if t.speaker_model is not None:  # turns diarized, or written by the transcriber, get source-level ids
        return SourceSpeakers(diarization_params(t.speaker_model), t.max_speakers)
    if t.max_speakers is not None:
        return SourceSpeakers(DiarizationParams(), t.max_speakers)  # counts the model's own turns
    return None


@dataclass(frozen=True)
class StageDecl:
    """One step of curation as declared: its name (the Stage of its rejects), the CurateConfig section holding its
    settings (`<config_key>.resources` are its resources), the registry family of its model (None: no model, so it
    runs in Ray tasks), where it runs, the Row fields it reads and writes ('sample.x': a field of the row's Sample),
    and how a configuration builds it (None: not run)."""

    name: Stage
    cls: type[GuardedStage]
    config_key: str
    family: str | None
    runs_in: Literal["task", "actor", "writer"]
    reads: frozenset[str]
    writes: frozenset[str]
    build: Callable[[CurateConfig], GuardedStage | None]


def _decl(cls, config_key, family, runs_in, reads, writes, build) -> StageDecl:
    return StageDecl(cls.name, cls, config_key, family, runs_in, frozenset(reads), frozenset(writes), build)


_PCM = ("audio", "sample_rate")
# Every stage may also read a row's identity (key, source_uri, input_index, unit, piece) and reject it.
STAGES: tuple[StageDecl, ...] = (
    _decl(
        DecodeStage,
        "decode",
        None,
        "task",
        ("source_uri", "source"),
        (*_PCM, "analysis", "piece", "last_piece", "source"),
        lambda cfg: DecodeStage(cfg.decode, decode_rate(cfg), _analysis_rate(cfg)),
    ),
    # ungated: every decoded piece is replaced by its vocals, before VAD
    _decl(
        SeparationStage,
        "separation",
        "separator",
        "actor",
        _PCM,
        (*_PCM, "analysis", "separation"),
        lambda cfg: _separation(cfg, gated=False),
    ),
    _decl(
        SegmentationStage,
        "segmentation",
        "vad",
        "actor",
        (*_PCM, "analysis", "source", "separation", "last_piece"),
        ("key", "audio", "analysis", "sample", "file_rows"),
        lambda cfg: SegmentationStage(cfg.segmentation),
    ),
    # gated: each utterance the quality model finds a background in, after VAD
    _decl(
        SeparationStage,
        "separation",
        "separator",
        "actor",
        (*_PCM, "analysis", "sample"),
        (*_PCM, "analysis", "sample.separation", "sample.quality", "sample.audio"),
        lambda cfg: _separation(cfg, gated=True),
    ),
    _decl(
        QualityStage,
        "quality",
        "quality",
        "actor",
        ("analysis", "sample"),
        ("sample.quality",),
        lambda cfg: QualityStage(cfg.quality) if cfg.quality.enabled else None,
    ),
    _decl(
        TranscriptionStage,
        "transcription",
        "asr",
        "actor",
        ("analysis", "sample", "file_rows", "last_piece"),
        ("sample.transcript", "sample.language", "sample.language_source", "sample.language_evidence", "speakers"),
        lambda cfg: TranscriptionStage(cfg.transcription) if cfg.transcription.enabled else None,
    ),
    _decl(
        CodecStage,
        "codec",
        "codec",
        "actor",
        (*_PCM, "sample"),
        ("codes", "sample.codec"),
        lambda cfg: CodecStage(cfg.codec) if cfg.codec.enabled else None,
    ),
    _decl(
        EncodeStage,
        "shards",
        None,
        "task",
        _PCM,
        ("audio", "analysis"),
        lambda cfg: EncodeStage(),
    ),
    # source stages: on the writer, once every row of an input has arrived
    _decl(
        SpeechRateOutliers,
        "transcription",
        None,
        "writer",
        ("sample",),
        (),
        lambda cfg: SpeechRateOutliers(cfg.transcription.rate_iqr_k) if cfg.transcription.enabled else None,
    ),
    _decl(
        SourceSpeakers,
        "transcription",
        "speaker",
        "writer",
        ("sample", "speakers"),
        ("sample.transcript", "sample.source_speakers", "speakers"),
        _speakers,
    ),
)


def declaration(cls: type) -> StageDecl:
    """The first STAGES entry a stage class is built by (for a stage built outside `CurationPipeline`)."""
    for decl in STAGES:
        if decl.cls is cls:
            return decl
    raise LookupError(f"{cls.__name__} is not declared in STAGES")


@dataclass
class CurationPipeline:
    decode: DecodeStage
    models: list[CurationStage]  # the stages that hold models, in order
    encode: EncodeStage
    source: list[SourceStage]  # run by the writer on each input once all its rows have arrived

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> CurationPipeline:
        """Walk STAGES: each stage the configuration runs, in declared order, with the run's failure settings."""
        built = []
        for index, decl in enumerate(STAGES):
            stage = decl.build(cfg)
            if stage is not None:
                stage.decl_index, stage.failure = index, cfg.failure
                built.append(stage)
        by = {where: [s for s in built if s.decl.runs_in == where] for where in ("task", "actor", "writer")}
        decode, encode = by["task"]
        return cls(decode, by["actor"], encode, by["writer"])

    @property
    def stages(self) -> list[GuardedStage]:
        return [self.decode, *self.models, self.encode, *self.source]


def preflight(cfg: CurateConfig) -> None:
    """Every model the configuration runs can be built (names known, weights findable) and every quality threshold
    names a dimension its scorer fills. Loads nothing."""
    for setting, family, spec in cfg.model_specs():
        try:
            registry.preflight(family, spec, setting)
        except CheckpointUnavailableError:
            raise
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
    gate = cfg.separation.gate if cfg.separation.enabled else None
    if gate is not None and not cfg.quality.enabled:
        raise StartupError(
            "separation.gate: decides on the quality model's scores; enable quality or set separation.gate=null"
        )
    if cfg.quality.min_bandwidth_hz is not None and not cfg.quality.enabled:
        raise StartupError("quality.min_bandwidth_hz: applied by the quality stage; enable quality or set it to null")
    if cfg.quality.enabled:
        spec = cfg.quality.model
        dims = registry.model_class("quality", spec.name, "quality.model").dimensions_for(spec)
        unknown = [d for d in cfg.quality.thresholds if dims is not None and d not in dims]
        if unknown:
            raise StartupError(
                f"quality.thresholds.{unknown[0]}: the {spec.name} scorer does not score {unknown[0]!r} (it scores {', '.join(dims)})"
            )
        if gate is not None and dims is not None and gate.dimension not in dims:
            raise StartupError(
                f"separation.gate.dimension: the {spec.name} scorer does not score {gate.dimension!r} (it scores {', '.join(dims)})"
            )
