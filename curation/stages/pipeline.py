"""Which stages a configuration runs, in order, at which rates, and the start-up check of all their models.

Stage objects are cheap to build (models load in `setup()`), so the process that plans a run builds them and an
executor ships them wherever they run: the sequential executor calls them in place, the Ray executor sends them to
its actors and tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.policy.diarization import DiarizationParams, diarization_params
from curation.stages.base import CurationStage
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


class StartupError(ValueError):
    """A configuration that cannot run, found before anything is written; the message names the setting."""


def decode_rate(cfg: CurateConfig) -> tuple[int, bool]:
    """(rate, upsample) for decode. With separation, the separator's own rate, where a source below it keeps its
    rate (the separator resamples what it gets: a 16 kHz source travels at 16 kHz, not 44.1); else segmentation's
    rate exactly. Either way every input is resampled once at most."""
    if cfg.separation.enabled:
        spec = cfg.separation.model
        return registry.model_class("separator", spec.name, "separation.model").native_rate(spec), False
    return cfg.decode.sample_rate, True


@dataclass
class CurationPipeline:
    decode: DecodeStage
    models: list[CurationStage]  # the stages that hold models, in order
    encode: EncodeStage
    source: list[SourceStage]  # run by the writer on each input once all its rows have arrived

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> CurationPipeline:
        stages: list[CurationStage] = []
        if cfg.separation.enabled:
            stages.append(SeparationStage(cfg.separation, cfg.decode.sample_rate))
        stages.append(SegmentationStage(cfg.segmentation))
        if cfg.quality.enabled:
            stages.append(QualityStage(cfg.quality))
        if cfg.transcription.enabled:
            stages.append(TranscriptionStage(cfg.transcription))
        source: list[SourceStage] = []
        t = cfg.transcription
        if t.enabled:
            source.append(SpeechRateOutliers(t.rate_iqr_k))
            writes_turns = registry.model_class("asr", t.model.name, "transcription.model").writes_speaker_turns
            if t.speaker_model is not None and not writes_turns:
                source.append(SourceSpeakers(diarization_params(t.speaker_model), t.max_speakers))
            elif t.max_speakers is not None:
                source.append(SourceSpeakers(DiarizationParams(), t.max_speakers))  # counts the model's own turns
        return cls(DecodeStage(cfg.decode, *decode_rate(cfg)), stages, EncodeStage(), source)


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
    if cfg.quality.enabled:
        spec = cfg.quality.model
        dims = registry.model_class("quality", spec.name, "quality.model").dimensions_for(spec)
        unknown = [d for d in cfg.quality.thresholds if dims is not None and d not in dims]
        if unknown:
            raise StartupError(
                f"quality.thresholds.{unknown[0]}: the {spec.name} scorer does not score {unknown[0]!r} (it scores {', '.join(dims)})"
            )
