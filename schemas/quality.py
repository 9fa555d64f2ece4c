"""Speech-quality scores: one canonical result type for every quality model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

QUALITY_DIMENSIONS = ("overall", "snr", "speaker_consistency", "recording_quality", "intelligibility")


class QualityScores(BaseModel):
    """Per-utterance quality. A model fills the dimensions it predicts and leaves the rest None.

    Scales are the model's own (DNSMOS: MOS 1-5; the w2v-BERT head: whatever its labels used);
    thresholds in the job config are therefore per model.
    """

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(description="Which scorer produced these numbers (name + checkpoint).")
    overall: float | None = None
    snr: float | None = None
    speaker_consistency: float | None = None
    recording_quality: float | None = None
    intelligibility: float | None = None
    extra: dict[str, float] = Field(
        default_factory=dict, description="Model-specific raw outputs (e.g. DNSMOS SIG/BAK/P808)."
    )

    def dimensions(self) -> dict[str, float]:
        """The filled dimensions, by name."""
        return {d: v for d in QUALITY_DIMENSIONS if (v := getattr(self, d)) is not None}

    def failed(self, thresholds: dict[str, float]) -> list[str]:
        """'<dim> <value> < <minimum>' for each minimum these scores miss; a missing or NaN value always misses."""
        out = []
        for dim, minimum in thresholds.items():
            value = getattr(self, dim)
            if value is None:
                out.append(f"{dim} missing < {minimum:g}")
            elif not value >= minimum:
                out.append(f"{dim} {value:.2f} < {minimum:g}")
        return out
