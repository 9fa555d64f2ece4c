"""One registry for every model: (family, ModelSpec.name) -> the wrapper class that implements it.

The classes follow their family's protocol (models/protocols.py). Importing a wrapper class imports neither torch
nor a model runtime (they load in `from_spec`), so `preflight` can run in a process that must stay light.
"""

from __future__ import annotations

import importlib

from schemas.config import ModelSpec

FAMILIES: dict[str, dict[str, str]] = {
    "separator": {
        "spleeter": "models.separator.spleeter:SpleeterSeparator",
        "htdemucs": "models.separator.demucs:DemucsSeparator",
    },
    "vad": {"silero": "models.vad:SileroVad"},
    "quality": {
        "dnsmos": "models.quality.dnsmos:DnsmosScorer",
        "w2vbert": "models.quality.w2vbert:W2vBertQualityScorer",
    },
    "asr": {
        "pocketsphinx": "models.asr.sphinx:PocketsphinxTranscriber",
        "qwen3-omni": "models.asr.qwen3_omni:Qwen3OmniTranscriber",
        "qwen3-omni-vllm": "models.asr.qwen3_omni_vllm:Qwen3OmniVllmTranscriber",
    },
    "speaker": {
        "resemblyzer": "models.speaker.voice_encoder:ResemblyzerEmbedder",
        "wavlm": "models.speaker.wavlm:WavLMSpeakerEmbedder",
    },
    "codec": {"s2-codec": "models.codec:S2Codec"},
    "tts": {"s2-dual-ar": "models.dual_ar.synthesizer:S2DualAR"},
}


class UnknownModelError(ValueError):
    pass


def model_class(family: str, name: str, setting: str = "model") -> type:
    """The wrapper class; an unknown family or name is a one-line error naming the setting and the choices. A name
    'package.module:Class' is a wrapper of the user's own (following the family's protocol), imported from there."""
    if family not in FAMILIES:
        raise UnknownModelError(f"{setting}: unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    path = FAMILIES[family].get(name) or (name if ":" in name else None)
    if path is None:
        raise UnknownModelError(
            f"{setting}.name: unknown {family} model {name!r}; choose one of {', '.join(FAMILIES[family])}, "
            "or name your own as 'package.module:Class'"
        )
    module, _, cls = path.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        if name in FAMILIES[family]:
            raise  # one of ours that cannot import: a broken installation, not a setting
        raise UnknownModelError(f"{setting}.name: cannot import {name!r}: {exc}") from exc


def build(family: str, spec: ModelSpec, setting: str = "model", **kwargs):
    """Build (load) the model `spec` names; kwargs go to the family's `from_spec` (e.g. a separator's chunking)."""
    return model_class(family, spec.name, setting).from_spec(spec, **kwargs)


def preflight(family: str, spec: ModelSpec, setting: str = "model") -> None:
    """Raise (one line naming `setting`) unless the model `spec` names can be built; loads nothing."""
    model_class(family, spec.name, setting).preflight(spec, setting)
