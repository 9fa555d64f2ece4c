"""One protocol per model family: what every implementation the registry names provides.

Common to all: `from_spec(spec, **kwargs)` builds the wrapper (loads the weights); `preflight(spec, setting)`
raises `CheckpointUnavailableError` (naming `setting`, e.g. 'quality.model') when the weights cannot be found,
without loading them and without importing torch or a model runtime; `model_id` names the model and its
weights; `sample_rate` is the rate the model works at (inputs at other rates are resampled inside).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np

from schemas.config import ModelSpec
from schemas.quality import QualityScores
from schemas.transcript import TranscriptionResult


class ModelWrapper(Protocol):
    model_id: str
    sample_rate: int

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> ModelWrapper: ...

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None: ...


class Separator(ModelWrapper, Protocol):
    @classmethod
    def native_rate(cls, spec: ModelSpec) -> int:
        """The rate the model separates at, without loading it: decode straight to it."""

    def vocals(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, output_rate: int | None = None
    ) -> list[np.ndarray]: ...


class Vad(ModelWrapper, Protocol):
    frame_s: ClassVar[float]

    def speech_probs(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]: ...


class QualityScorer(ModelWrapper, Protocol):
    dimensions: tuple[str, ...]

    @classmethod
    def dimensions_for(cls, spec: ModelSpec) -> tuple[str, ...] | None:
        """The QualityScores fields the model `spec` names fills, without loading it (None: unknown until loaded)."""

    def score(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[QualityScores]: ...


class Transcriber(ModelWrapper, Protocol):
    writes_speaker_turns: bool  # False: a single turn, speakers to be assigned by diarization

    def transcribe(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None
    ) -> list[TranscriptionResult]: ...


class SpeakerEmbedder(ModelWrapper, Protocol):
    def embed(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """(n, dim) unit vectors: cosine similarity compares speakers."""
