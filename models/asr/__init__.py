"""Transcribers: waveforms in, `TranscriptionResult`s (a `RichTranscript` or the reason there is none) out.

    pocketsphinx  offline English ASR, word times and confidences (`local` profile)
    qwen3-omni    Qwen3-Omni thinker prompted for speaker turns and vocal-event tags (`s2` profile)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from schemas.config import ModelSpec
from schemas.transcript import TranscriptionResult

NAMES = ("pocketsphinx", "qwen3-omni")


class Transcriber(Protocol):
    model_id: str
    sample_rate: int
    writes_speaker_turns: bool  # False: a single turn, speakers to be assigned by diarization

    def transcribe(self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None) -> list[TranscriptionResult]: ...


def _unknown(spec: ModelSpec) -> ValueError:
    return ValueError(f"transcription.model.name={spec.name!r} is not a transcriber; choose one of {', '.join(NAMES)}")


def preflight(spec: ModelSpec) -> None:
    """Raise CheckpointUnavailableError (or ValueError for an unknown name) without loading the model."""
    if spec.name == "pocketsphinx":
        from models.asr.sphinx import preflight as check
    elif spec.name == "qwen3-omni":
        from models.asr.qwen3_omni import preflight as check
    else:
        raise _unknown(spec)
    check(spec)


def load_transcriber(spec: ModelSpec) -> Transcriber:
    if spec.name == "pocketsphinx":
        from models.asr.sphinx import PocketsphinxTranscriber

        return PocketsphinxTranscriber(spec)
    if spec.name == "qwen3-omni":
        from models.asr.qwen3_omni import Qwen3OmniTranscriber

        return Qwen3OmniTranscriber(spec)
    raise _unknown(spec)
