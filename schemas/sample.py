"""The per-sample record written as KEY.json, and the reject record."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.quality import QualityScores
from schemas.rejects import RejectReason, Stage
from schemas.transcript import RichTranscript

SCHEMA_VERSION = "1.1"

# How a sample's language was decided: given with the input (a manifest column), given for the whole job
# (transcription.language), found by the transcriber (Qwen3-Omni names it; the English-only offline recogniser
# vouches for English through its own evidence), or not known.
LanguageSource = Literal["manifest", "config", "model", "unknown"]


class AudioFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(gt=0)
    channels: int = Field(gt=0)
    duration_s: float = Field(ge=0)
    format: str | None = Field(
        default=None, description="Container/codec as detected at decode, e.g. 'WAV', 'FLAC', 'mp3'."
    )
    bandwidth_hz: float | None = Field(
        default=None,
        ge=0,
        description="The band the audio holds, measured from its spectrum (models.signal.effective_bandwidth_hz): "
        "above it only stationary noise. An 8 kHz call resampled to 44.1 kHz reads ~4000 whatever its sample_rate. "
        "Set for a kept segment's audio; None where too short (< ~0.1 s) or silent to tell.",
    )


class SourceRef(BaseModel):
    """Where a sample came from: the input URI, the span in it, and what came with the input."""

    model_config = ConfigDict(extra="forbid")

    uri: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    audio: AudioFacts = Field(description="Facts of the whole source file before any processing.")
    text: str | None = Field(
        default=None, description="Sidecar transcript given with the input (.txt/.lab or manifest)."
    )
    speaker: str | None = None
    language: str | None = None


class SeparationInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str
    chunk_s: float
    overlap_s: float
    applied: bool = Field(
        default=True,
        description="Whether the written audio is the separator's output (True) or the input left untouched because it "
        "needed no separation (False).",
    )
    background: float | None = Field(
        default=None,
        description="The score separation was decided on (the quality model's background score of the unseparated "
        "audio, higher = cleaner), where one was taken.",
    )
    speech_to_background_db: float | None = Field(
        default=None,
        description="Where the separator ran: its vocals against what it removed, in dB (how loud the background was).",
    )


class VadInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str
    threshold: float
    speech_s: float = Field(description="Seconds of detected speech inside the segment.")


class CodecInfo(BaseModel):
    """Which codec wrote KEY.codes.npy (int16 [num_codebooks, frames]) and what it holds."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(description="The codec and its weights, e.g. 's2-codec:s2-pro/codec.pth@1a2b3c4d5e6f'.")
    weights_sha256: str = Field(
        description="SHA-256 of the codec's weights file: codes are comparable only under equal weights."
    )
    sample_rate: int = Field(
        gt=0, description="The rate the codec encoded at (the written audio resampled once to it)."
    )
    frame_rate: float = Field(gt=0, description="Frames per second (44100 / 2048 for S2).")
    frames: int = Field(ge=1)
    num_codebooks: int = Field(ge=1)


class Sample(BaseModel):
    """KEY.json: everything known about one kept utterance."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    key: str
    source: SourceRef
    audio: AudioFacts = Field(description="Facts of the audio written beside this record (KEY.flac).")
    separation: SeparationInfo | None = None
    vad: VadInfo | None = None
    quality: QualityScores | None = None
    transcript: RichTranscript | None = None
    language: str | None = Field(default=None, description="Language of the speech (ISO 639-1); None = unknown.")
    language_source: LanguageSource = Field(
        default="unknown",
        description="How `language` was decided: 'manifest' (given with the input), 'config' (transcription.language), "
        "'model' (found by the transcriber), 'unknown'.",
    )
    language_evidence: dict[str, float] | None = Field(
        default=None,
        description="The recogniser's figures the language decision rested on (offline profile: mean word confidence, "
        "acoustic score per frame, ...).",
    )
    source_speakers: int | None = Field(
        default=None,
        ge=0,
        description="Distinct speakers found across all kept samples of this sample's source (source-level "
        "diarization); the turns' `source_speaker` ids range over them. None where no speaker embedder ran.",
    )
    overlap_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds of overlapped speech (two voices at once) found in the segment "
        "(curation.policy.overlap); None where not measured (transcription.max_overlap_s unset).",
    )
    codec: CodecInfo | None = Field(default=None, description="Set when the shard holds KEY.codes.npy.")


class Reject(BaseModel):
    """A rejected input or segment: it ends here, with the reason, instead of in a shard."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="Source URI.")
    key: str | None = Field(default=None, description="Segment key, when the reject is a segment.")
    stage: Stage = Field(description="The stage that stopped the input or segment.")
    reason: RejectReason = Field(description="A short stable code (schemas.rejects.REASON_DOCS says what each means).")
    detail: str = Field(default="", description="Human-readable specifics: the error, the failed thresholds.")
    start_s: float | None = None
    end_s: float | None = None
