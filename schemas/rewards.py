"""Rewards of RL post-training and the reward services: their configuration, results and HTTP contract.

Three rewards, each scored by a wrapper the curation profile already runs, so filtering and RL share one notion of
good speech, and each normalised to [0, 1] (higher is better) so that the weights compare like with like:

  stt         R_STT, intelligibility of the target rich transcript (`stt.*` settings say how it is computed)
  quality     R_Pref, the quality model's judgement: P(good) where the model gives one (w2v-BERT head), else its
              MOS mapped linearly from `preference.mos_range` (DNSMOS)
  similarity  R_SIM, cosine similarity of the generated voice and the reference voice, mapped from
              `similarity.cosine_range`
  total       sum of weight x reward over the three (weights 0 skip a reward and what it needs): a weighted sum,
              in [0, sum of the weights], not normalised (Eq. 9's R_total; [0, 3] with the default weights)

A result the rewards cannot compute (empty, silent or non-finite audio, a missing target, a model failure on that
item) is `WORST_SCORE` with the reason in `error`, never an exception that loses the batch.

HTTP: `POST /v1/score/{stt|quality|similarity|total}` takes a `ScoreRequest` and answers a `ScoreResponse`, the
results in item order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.config import ModelSpec

RewardKind = Literal["stt", "quality", "similarity", "total"]
COMPONENTS: tuple[str, ...] = ("stt", "quality", "similarity")
TOKEN_ENV = "S2_REWARDS_TOKEN"  # the bearer token the services require and the client sends
TIMEOUT_HEADER = "X-Request-Timeout-S"  # a client's deadline for one request, at most the service's own
WORST_SCORE = 0.0  # every reward lies in [0, 1] and weights are >= 0, so 0 is the worst a total can be


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Range(_Strict):
    """A linear map of raw values onto [0, 1]: `lo` -> 0, `hi` -> 1, clipped outside."""

    lo: float
    hi: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.hi > self.lo:
            raise ValueError("hi must be greater than lo")
        return self


class RewardModels(_Strict):
    """The wrappers behind the rewards. None = the curation profile's spec, so rewards and filters are one model."""

    quality: ModelSpec | None = Field(default=None, description="R_Pref scorer; None = the profile's quality.model.")
    asr: ModelSpec | None = Field(
        default=None, description="R_STT transcriber; None = the profile's transcription.model."
    )
    speaker: ModelSpec | None = Field(
        default=None,
        description="R_SIM embedder (and the offline R_STT's speaker check); None = the profile's "
        "transcription.speaker_model. Required where the profile has none (s2: Qwen3-Omni writes turns itself).",
    )


class RewardWeights(_Strict):
    """lambda_STT, lambda_Pref, lambda_SIM of the total."""

    stt: float = Field(default=1.0, ge=0, description="Weight of R_STT in the total.")
    quality: float = Field(default=1.0, ge=0, description="Weight of R_Pref in the total.")
    similarity: float = Field(default=1.0, ge=0, description="Weight of R_SIM in the total; 0 = no reference needed.")

    def of(self, component: str) -> float:
        return getattr(self, component)


class SttConfig(_Strict):
    """R_STT. With a transcriber that scores given text (Qwen3-Omni: `teacher_forced_logprobs`): each token of the
    target costs its negative log-probability given the audio, times its weight; R_STT = exp(-total cost / tokens),
    a weighted per-token likelihood. Offline (pocketsphinx, which cannot score given text): each target word costs
    1 - its recognised word's confidence (1 when missed or misrecognised), each inserted word 1, each speaker
    decision `speaker_weight` x its disagreement; R_STT = max(0, 1 - total cost / target words), which is 1 - WER
    when every confidence is 1. Offline, vocal tags are not checked, and the result says so."""

    speaker_weight: float = Field(
        default=5.0,
        ge=1,
        description="Cost multiplier of speaker-marker tokens (<|speaker:i|>): a wrong or missed speaker change costs this many word errors.",
    )
    vocal_weight: float = Field(
        default=2.0,
        ge=1,
        description="Cost multiplier of vocal-tag tokens ([laugh], [whispers]): a missed vocal instruction costs extra.",
    )
    speaker_piece_s: float = Field(
        default=1.5,
        gt=0,
        description="Offline speaker check: turns are cut at pauses into pieces of at least this length, and neighbouring pieces compared.",
    )
    same_speaker_similarity: dict[str, float] = Field(
        default_factory=lambda: {"resemblyzer": 0.65, "wavlm": 0.86},
        description="Offline speaker check: cosine above which two pieces are one voice, per speaker model name (the curation's diarization thresholds).",
    )
    similarity_softness: float = Field(
        default=0.05,
        gt=0,
        description="Offline speaker check: width of the logistic around the threshold (agreement 0.73 at one width on the right side).",
    )


class PreferenceConfig(_Strict):
    """R_Pref from the quality model's scores on one dimension."""

    dimension: str = Field(
        default="overall",
        description="QualityScores dimension: its P(good) (extra['p_good_<dim>']) where the model gives one, else its MOS.",
    )
    mos_range: Range = Field(
        default_factory=lambda: Range(lo=1.0, hi=5.0),
        description="MOS mapped onto [0, 1] for scorers without P(good) (DNSMOS: 1-5).",
    )


class SimilarityConfig(_Strict):
    cosine_range: Range = Field(
        default_factory=lambda: Range(lo=0.0, hi=1.0),
        description="Cosine similarity mapped onto [0, 1]; a cosine at or below lo is the worst.",
    )


class AudioLimits(_Strict):
    """What an item's audio must be to be scored; anything else is a per-item error."""

    max_seconds: float = Field(default=60.0, gt=0, description="Longer audio (generated or reference) is refused.")
    silence_peak: float = Field(
        default=1e-4, ge=0, description="Audio whose peak is at or below this (-80 dBFS) is silent."
    )
    min_sample_rate: int = Field(default=8000, gt=0, description="Lower declared rates are refused.")
    max_sample_rate: int = Field(default=192000, gt=0, description="Higher declared rates are refused.")


class DeploymentResources(_Strict):
    replicas: int = Field(default=1, gt=0, description="Replicas of this deployment.")
    num_cpus: float = Field(default=0.5, ge=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPU fraction per replica.")


class ServiceConfig(_Strict):
    """`s2 serve-rewards`: limits of the HTTP ingress and the Ray Serve deployments."""

    max_request_bytes: int = Field(default=64 * 2**20, gt=0, description="Larger request bodies are answered 413.")
    max_items: int = Field(default=128, gt=0, description="More items in one request are answered 413.")
    request_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A request not answered within this is 504; a client may ask for less (X-Request-Timeout-S).",
    )
    max_batch_size: int = Field(
        default=8,
        gt=0,
        description="Items per model call in a replica (@serve.batch), gathered across concurrent requests.",
    )
    batch_wait_timeout_s: float = Field(
        default=0.05,
        ge=0,
        description="How long a replica waits to fill a batch (short against a model call: a lone request waits this long).",
    )
    max_concurrent_requests: int = Field(
        default=64, gt=0, description="Requests the ingress handles at once per replica."
    )
    ingress: DeploymentResources = Field(
        default_factory=lambda: DeploymentResources(num_cpus=0.0), description="HTTP ingress (decodes audio)."
    )
    stt: DeploymentResources = Field(default_factory=DeploymentResources)
    quality: DeploymentResources = Field(default_factory=DeploymentResources)
    similarity: DeploymentResources = Field(default_factory=DeploymentResources)
    total: DeploymentResources = Field(
        default_factory=lambda: DeploymentResources(num_cpus=0.0), description="Combines the three; holds no model."
    )


class RewardsConfig(_Strict):
    profile: str = Field(
        default="local",
        description="Curation profile whose model specs the rewards reuse (jobs/configs/<profile>.yaml).",
    )
    models: RewardModels = Field(default_factory=RewardModels)
    weights: RewardWeights = Field(default_factory=RewardWeights)
    stt: SttConfig = Field(default_factory=SttConfig)
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    similarity: SimilarityConfig = Field(default_factory=SimilarityConfig)
    audio: AudioLimits = Field(default_factory=AudioLimits)
    service: ServiceConfig = Field(default_factory=ServiceConfig)

    @model_validator(mode="after")
    def _some_weight(self) -> RewardsConfig:
        if not any(self.weights.of(c) > 0 for c in COMPONENTS):
            raise ValueError("weights: at least one of stt, quality, similarity must be above 0")
        return self

    def needs(self, kind: RewardKind) -> tuple[str, ...]:
        """Components a reward of this kind runs."""
        if kind != "total":
            return (kind,)
        return tuple(c for c in COMPONENTS if self.weights.of(c) > 0)


class RewardResult(BaseModel):
    """One item's reward: `score` (the worst, WORST_SCORE, when `error` says why it could not be computed), the
    named components behind it (every value computed, for logging), and notes such as which model and method."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(
        description="stt, quality, similarity: in [0, 1]. total: the weighted sum of those, in [0, sum of weights]."
    )
    components: dict[str, float] = Field(default_factory=dict)
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def failed(
        cls, reason: str, components: dict[str, float] | None = None, metadata: dict[str, str] | None = None
    ) -> RewardResult:
        return cls(score=WORST_SCORE, components=components or {}, error=reason, metadata=metadata or {})


class PcmAudio(_Strict):
    """Raw interleaved samples."""

    data: str = Field(description="Base64 of the samples.")
    sample_rate: int = Field(gt=0)
    encoding: Literal["s16le", "f32le"] = Field(
        default="s16le", description="16-bit integers or 32-bit floats, little-endian."
    )
    channels: int = Field(default=1, gt=0, description="Interleaved channels, averaged to mono.")


AudioPayload = str | PcmAudio  # str: base64 of a WAV or FLAC file (anything libsndfile reads)


class ScoreItem(_Strict):
    audio: AudioPayload = Field(description="The generated audio.")
    text: str | None = Field(
        default=None, description="Target rich transcript (<|speaker:i|> turns, [tags]); R_STT needs it."
    )
    reference: AudioPayload | None = Field(default=None, description="Audio of the reference voice; R_SIM needs it.")


class ScoreRequest(_Strict):
    items: list[ScoreItem]


class ScoreResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[RewardResult] = Field(description="One per request item, in item order.")
