"""Speaker embedders: waveforms in, (n, dim) unit vectors out; cosine similarity compares speakers.

    resemblyzer  GE2E voice encoder, weights from the resemblyzer wheel (`local` profile)
    wavlm        WavLM x-vector head from transformers (`s2` profile)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from schemas.config import ModelSpec

NAMES = ("resemblyzer", "wavlm")


class SpeakerEmbedder(Protocol):
    model_id: str
    sample_rate: int

    def embed(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray: ...


def _unknown(spec: ModelSpec) -> ValueError:
    return ValueError(f"transcription.speaker_model.name={spec.name!r} is not a speaker embedder; choose one of {', '.join(NAMES)}")


def preflight(spec: ModelSpec) -> None:
    """Raise CheckpointUnavailableError without loading the model."""
    if spec.name == "resemblyzer":
        from models.speaker.voice_encoder import weights_path

        weights_path(spec)
    elif spec.name == "wavlm":
        from models.checkpoints import resolve_hf_checkpoint
        from models.speaker.wavlm import CONFIG_KEY, DEFAULT_CHECKPOINT

        # A small checkpoint: fetching it into the cache here is what loading would do anyway.
        resolve_hf_checkpoint(spec.checkpoint or DEFAULT_CHECKPOINT, "WavLM speaker embedder", CONFIG_KEY)
    else:
        raise _unknown(spec)


def load_speaker_embedder(spec: ModelSpec) -> SpeakerEmbedder:
    if spec.name == "resemblyzer":
        from models.speaker.voice_encoder import ResemblyzerEmbedder

        return ResemblyzerEmbedder(spec)
    if spec.name == "wavlm":
        from models.speaker.wavlm import WavLMSpeakerEmbedder

        return WavLMSpeakerEmbedder(spec)
    raise _unknown(spec)
