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
from curation.stages.tokenize import TokenizeStage
from curation.stages.transcription import TranscriptionStage
from models import registry
from models.checkpoints import CheckpointUnavailableError
from schemas.config import CurateConfig


class StartupError(ValueError):
    """A configuration that cannot run, found before anything is written; the message names the setting."""


def decode_rate(cfg: CurateConfig) -> int:
    """The most decode writes: a source keeps its own rate up to decode.max_output_rate (full band for the shards and
    the codec; never upsampled). Lower-rate sources are taken to a model's rate by the model itself, once."""
    return cfg.decode.max_output_rate


@dataclass
class CurationPipeline:
    decode: DecodeStage
    models: list[CurationStage]  # the stages that hold models, in order
    encode: EncodeStage
    source: list[SourceStage]  # run by the writer on each input once all its rows have arrived

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> CurationPipeline:
        stages: list[CurationStage] = []
        sep, rate, top = cfg.separation, cfg.decode.sample_rate, cfg.decode.max_output_rate
        gated = sep.gate is not None
        if sep.enabled and not gated:  # every piece, before VAD
            stages.append(SeparationStage(sep, rate, top))
        stages.append(SegmentationStage(cfg.segmentation))
        if cfg.separation.enabled and gated:  # each utterance that needs it, after VAD
            quality = cfg.quality.model if cfg.quality.enabled else None
            stages.append(SeparationStage(sep, rate, top, quality))
        if cfg.quality.enabled:
            stages.append(QualityStage(cfg.quality))
        if cfg.transcription.enabled:
            stages.append(TranscriptionStage(cfg.transcription))
        if cfg.codec.enabled:
            stages.append(TokenizeStage(cfg.codec))
        source: list[SourceStage] = []
        t = cfg.transcription
        if t.enabled:
            source.append(SpeechRateOutliers(t.rate_iqr_k))
            writes_turns = registry.model_class("asr", t.model.name, "transcription.model").writes_speaker_turns
            if t.speaker_model is not None and not writes_turns:
                source.append(SourceSpeakers(diarization_params(t.speaker_model), t.max_speakers))
            elif t.max_speakers is not None:
                source.append(SourceSpeakers(DiarizationParams(), t.max_speakers))  # counts the model's own turns
        # the analysis copy is made where the full-band audio is final before VAD: in decode, or after separation of
        # whole pieces (gated separation makes a new copy of the utterances it replaces)
        analysis_rate = None if sep.enabled and not gated else rate
        return cls(DecodeStage(cfg.decode, decode_rate(cfg), analysis_rate), stages, EncodeStage(), source)


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
