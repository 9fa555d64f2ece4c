"""GRPO post-training of the Dual-AR model (the report, Section 4.3): `s2 grpo --config grpo.yaml` and
`python -m jobs.grpo` (Ray).

Layers as for training (schemas.config.layered): the defaults below <- the YAML file <- `--set key.path=value`.
Every default is stated in its field's description. Sections: policy, codec, prompts, sampling, loss, lora,
optimizer, rewards, runtime, ray.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.rewards import TOKEN_ENV, RewardsConfig
from schemas.training import LoraConfig, StartTimeout, TinyModelConfig

# Rewards a GRPO run can weigh: the services' three (models.rewards) and the demo's learnable one
# (training.grpo.rewards.DurationReward).
RewardName = Literal["stt", "quality", "similarity", "duration"]
SERVICE_REWARDS: tuple[str, ...] = ("stt", "quality", "similarity")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PolicyConfig(_Strict):
    """The policy's starting weights. LoRA adapters are trained on it; the same model with its adapters disabled
    is the reference policy of the KL term."""

    init: Literal["s2", "tiny"] = Field(
        default="s2",
        description="'s2': a released-format checkpoint folder (path), e.g. after SFT (default); 'tiny': a tiny random-init model, for tests and the demo.",
    )
    path: str | None = Field(default=None, description="Checkpoint folder when init is 's2' (default None).")
    seed: int = Field(default=0, description="Seed of the tiny model's weights (default 0).")
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig, description="Sizes when init is 'tiny'.")
    attention: Literal["sdpa", "flex"] = Field(
        default="sdpa", description="Attention kernel of the policy's loss forward (default 'sdpa')."
    )

    @model_validator(mode="after")
    def _path_given(self) -> PolicyConfig:
        if self.init == "s2" and not self.path:
            raise ValueError("policy.path is required when policy.init is 's2'")
        return self


class TinyCodecConfig(_Strict):
    """A tiny random-init codec (models.codec CodecConfig.tiny) with these codebooks, built at start through the
    codec's save and load path: the same seed, the same codec."""

    semantic_codebook_size: int = Field(
        default=4096, gt=1, description="Entries of the semantic codebook (default 4096, the S2 codec's)."
    )
    codebook_size: int = Field(
        default=1024, gt=1, description="Entries of each acoustic codebook (default 1024, the S2 codec's)."
    )
    residual_codebooks: int = Field(default=9, ge=1, description="Acoustic codebooks (default 9, the S2 codec's).")
    seed: int = Field(default=0, description="Seed of its weights (default 0).")


class CodecSection(_Strict):
    """The codec that turns rollouts into audio for the rewards (and reference audio into prompt codes)."""

    checkpoint: str | None = Field(
        default=None, description="The S2 codec: a `codec.pth` or its folder (default None: use `tiny`)."
    )
    tiny: TinyCodecConfig | None = Field(
        default=None, description="A tiny random-init codec instead of a checkpoint (default None)."
    )
    device: str = Field(default="auto", description="'cpu', 'cuda[:N]' or 'auto' (default 'auto').")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="Decode dtype on GPU (default 'float32'; CPU always runs float32)."
    )
    batch_size: int = Field(default=16, gt=0, description="Rollouts decoded per codec call (default 16).")

    @model_validator(mode="after")
    def _one_source(self) -> CodecSection:
        if (self.checkpoint is None) == (self.tiny is None):
            raise ValueError("set exactly one of codec.checkpoint and codec.tiny")
        return self


class PromptsConfig(_Strict):
    """What the policy is asked to say. A JSONL file: one object per line, `text` (a rich transcript: speaker tags,
    vocal tags) and optionally `reference_audio` (a path, relative to the file's folder) with `reference_text`, the
    voice to clone (its codes go into the prompt, its waveform to R_SIM). Or tokenized curated shards: each
    sample's transcript, with another segment of the same speaker as reference (its codes; R_SIM gets their audio
    as the codec decodes them)."""

    jsonl: str | None = Field(default=None, description="A prompts JSONL file (default None).")
    index: str | None = Field(
        default=None, description="A curated and tokenized run's index.json, local or s3:// (default None)."
    )
    shards: list[str] = Field(default_factory=list, description="Tokenized shard URIs (default []).")
    limit: int | None = Field(
        default=None, ge=1, description="Use only the first this many prompts, in file or shard order (default None)."
    )
    references: bool = Field(
        default=True, description="Shards: give each prompt another segment of its speaker as the voice (default true)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> PromptsConfig:
        if sum([self.jsonl is not None, self.index is not None, bool(self.shards)]) != 1:
            raise ValueError("set exactly one of prompts.jsonl, prompts.index and prompts.shards")
        return self


class SamplingConfig(_Strict):
    """The rollouts' sampler (models.dual_ar.sampling.SamplingParams), restricted to codes the codec decodes."""

    temperature: float = Field(default=0.8, gt=0, description="Temperature (default 0.8, the reference API's).")
    top_p: float = Field(default=0.8, gt=0, le=1, description="Top-p on the untempered logits (default 0.8).")
    top_k: int = Field(default=30, ge=1, description="Top-k (default 30).")
    ras_window: int = Field(default=10, ge=0, description="Repetition-aware sampling window (default 10; 0 = off).")
    ras_temperature: float = Field(default=1.0, gt=0, description="RAS resampling temperature (default 1.0).")
    ras_top_p: float = Field(default=0.9, gt=0, le=1, description="RAS resampling top-p (default 0.9).")
    max_new_tokens: int = Field(default=1024, ge=1, description="Frames per rollout at most (default 1024).")


class LossConfig(_Strict):
    """Eq. 6-8: L = L_slow + gamma L_fast, each a sum over a rollout's tokens of -A_i log pi + beta KL_k3(pi, pi_ref),
    divided as loss.length_norm says (training/grpo/losses.py)."""

    beta: float = Field(default=0.04, ge=0, description="Weight of the k3 KL to the reference policy (default 0.04).")
    gamma: float = Field(default=1.0, ge=0, description="Weight of the fast AR's loss, Eq. 8 (default 1.0).")
    length_norm: Literal["constant", "sequence"] = Field(
        default="constant",
        description="What each rollout's token sums are divided by: 'constant' (default, Dr.GRPO): sampling.max_new_tokens for the slow AR and max_new_tokens x (N-1) for the fast, the same for every rollout; 'sequence': the rollout's own token counts (per-response means, which favour long bad rollouts), for comparison.",
    )


class OptimizerConfig(_Strict):
    """AdamW over the LoRA adapters (training.trainer's parameter groups and warmup), then a constant rate."""

    lr: float = Field(default=1e-5, gt=0, description="Learning rate of the slow AR's adapters (default 1e-5).")
    lr_audio: float | None = Field(
        default=None, gt=0, description="Learning rate of the fast AR's adapters (default None = lr)."
    )
    warmup_steps: int = Field(default=10, ge=0, description="Linear warmup from 0 (default 10 steps).")
    betas: tuple[float, float] = Field(default=(0.9, 0.99), description="AdamW betas (default [0.9, 0.99]).")
    eps: float = Field(default=1e-8, gt=0, description="AdamW epsilon (default 1e-8).")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW decoupled weight decay (default 0.0).")
    grad_clip: float = Field(
        default=1.0, ge=0, description="Clip the adapters' gradient norm to this (default 1.0; 0 = no clipping)."
    )


class DurationConfig(_Strict):
    """The demo's learnable reward: the decoded audio's duration over `target_s`, capped at 1."""

    target_s: float = Field(
        default=1.0, gt=0, description="Duration that scores 1; shorter audio scores its fraction of it (default 1 s)."
    )


class GRPORewardsConfig(_Strict):
    """R_i = sum of weight x reward over the rewards weighted above 0, each scored by its own worker (a thread, a
    Ray actor, or a request to its service endpoint) on audio decoded once; an item any reward cannot score gets
    0 with the reasons (as the services' total); items a failed service left without a reward are dropped."""

    weights: dict[RewardName, float] = Field(
        default_factory=lambda: {"stt": 1.0, "quality": 1.0, "similarity": 0.0},
        description="Reward -> weight (default stt and quality 1.0, similarity 0.0: any prompt source works). "
        "similarity > 0 (R_total, Eq. 9) needs a reference voice in every prompt; duration is the demo's learnable reward.",
    )
    profile: str = Field(
        default="local",
        description="Curation profile whose models the in-process rewards run: local (default) or s2.",
    )
    settings: dict = Field(
        default_factory=dict,
        description="RewardsConfig fields other than profile and weights (schemas/rewards.py: stt, preference, similarity, audio, models), as `s2 serve-rewards --config` takes them (default {}).",
    )
    url: str | None = Field(
        default=None,
        description="Base URL of `s2 serve-rewards` (default None: the rewards run in-process); stt, quality and similarity are then scored by its endpoints.",
    )
    token_env: str = Field(
        default=TOKEN_ENV, description=f"Environment variable holding the services' bearer token (default {TOKEN_ENV})."
    )
    timeout_s: float = Field(default=120.0, gt=0, description="Deadline of one request to a service (default 120 s).")
    retries: int = Field(
        default=3,
        ge=0,
        description="Retries of a service request that timed out, could not connect or was answered 5xx (default 3); other answers are not retried.",
    )
    retry_backoff_s: float = Field(
        default=1.0,
        ge=0,
        description="Wait before the first retry, doubled before each next one (default 1 s): a request gives up after at most retries + 1 tries and retry_backoff_s x (2^retries - 1) s of waiting.",
    )
    max_failed_fraction: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="A step stops the run when a failed reward service (past its retries) left more than this fraction of its rollouts without a reward (default 0.25); below it they are dropped from their groups and counted in rewards.jsonl.",
    )
    duration: DurationConfig = Field(default_factory=DurationConfig)

    @model_validator(mode="after")
    def _valid(self) -> GRPORewardsConfig:
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise ValueError("rewards.weights must be >= 0 with at least one above 0")
        stated = sorted({"profile", "weights"} & set(self.settings))
        if stated:
            raise ValueError(f"rewards.settings: set {', '.join(stated)} as rewards.{stated[0]}, not in settings")
        RewardsConfig.model_validate(self.settings)  # fails here, naming the field, rather than at the first step
        return self

    def active(self) -> dict[str, float]:
        """The rewards that run, with their weights, in a fixed order."""
        return {name: w for name, w in sorted(self.weights.items()) if w > 0}

    def service_layer(self) -> dict:
        """The RewardsConfig layer of the services' rewards (jobs.serve_rewards.rewards_config resolves it)."""
        weights = {name: self.weights.get(name, 0.0) for name in SERVICE_REWARDS}
        return {**self.settings, "profile": self.profile, "weights": weights}


class RuntimeConfig(_Strict):
    steps: int = Field(default=500, ge=1, description="Optimizer steps of the run (default 500).")
    group_size: int = Field(default=8, ge=2, description="G, rollouts per prompt (default 8).")
    prompts_per_step: int = Field(default=4, ge=1, description="Prompts (groups) per optimizer step (default 4).")
    micro_batch: int = Field(default=8, ge=1, description="Rollouts per forward/backward pass of the loss (default 8).")
    dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16",
        description="Compute dtype of generation and the loss on GPU (default bfloat16; CPU runs float32).",
    )
    device: str = Field(default="auto", description="'auto' (cuda when available), 'cpu' or 'cuda[:N]' (default).")
    cpu_threads: int | None = Field(
        default=None, ge=1, description="torch threads of the policy's process (default None = torch's choice)."
    )
    seed: int = Field(default=0, description="Seed of the prompt order and of every rollout's sampler (default 0).")
    out: str = Field(
        default="grpo_out",
        description="Run folder, local or s3:// (default 'grpo_out'): rewards.jsonl, checkpoints/, model/ (LoRA merged, released format).",
    )
    ckpt_every: int = Field(
        default=50, ge=1, description="Checkpoint every this many steps (default 50); the last step always is."
    )
    keep_checkpoints: int = Field(default=2, ge=1, description="Checkpoints kept, newest first (default 2).")
    resume: bool = Field(
        default=True, description="Continue from the newest checkpoint in `out` when there is one (default true)."
    )


class RayConfig(_Strict):
    """`python -m jobs.grpo`: the same loop on a Ray cluster."""

    address: str | None = Field(default=None, description="Cluster address (default None = RAY_ADDRESS or local).")
    policy_workers: int = Field(
        default=1, ge=1, description="Policy processes (default 1); each generates and trains on its share of prompts."
    )
    use_gpu: bool = Field(default=False, description="One GPU per policy worker (default false).")
    policy_cpus: float = Field(default=1.0, gt=0, description="CPUs per policy worker (default 1).")
    reward_cpus: float = Field(default=1.0, ge=0, description="CPUs per in-process reward actor (default 1).")
    reward_gpus: float = Field(default=0.0, ge=0, description="GPU fraction per reward actor (default 0).")
    start_timeout_s: StartTimeout = 600.0


class GRPOConfig(_Strict):
    policy: PolicyConfig = Field(description="Required: policy.init and, for 's2', policy.path.")
    codec: CodecSection = Field(description="Required: codec.checkpoint or codec.tiny.")
    prompts: PromptsConfig = Field(description="Required: prompts.jsonl, prompts.index or prompts.shards.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    lora: LoraConfig = Field(
        default_factory=lambda: LoraConfig(enabled=True),
        description="rsLoRA on the MLPs (default r 16, alpha 64, w1 w2 w3: the report's); must stay enabled.",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    rewards: GRPORewardsConfig = Field(default_factory=GRPORewardsConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _consistent(self) -> GRPOConfig:
        if not self.lora.enabled:
            raise ValueError("lora.enabled must be true: the reference policy is the model with its adapters disabled")
        if self.runtime.prompts_per_step % self.ray.policy_workers:
            raise ValueError(
                f"runtime.prompts_per_step {self.runtime.prompts_per_step} must be a multiple of ray.policy_workers {self.ray.policy_workers}"
            )
        return self
