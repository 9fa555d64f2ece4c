"""Training configuration of the S2 codec: `s2 codec train --config codec.yaml` and `python -m jobs.codec_train`.

The report (Sections 2.1, 4.1): a GAN with three discriminators (multi-period, multi-resolution, multi-scale STFT) and
semantic distillation of w2v-BERT 2.0 layer 16 into the first codebook. Layers as for the Dual-AR trainer: the
defaults below <- the YAML file <- `--set key.path=value`. Every default is stated, with its reason, in its field's
description. Sections: data, codec, discriminators, loss, semantic, optimizer, eval, runtime, ray.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.training import RayConfig, RunConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CodecDataConfig(_Strict):
    """Full-band audio to crop: curated shards (their KEY.flac), a curation index.json, or folders of audio files."""

    sources: list[str] = Field(
        min_length=1,
        description="Required: WebDataset tar shards (local or s3://), a curation run's index.json (local or s3://), or local folders of audio files (wav, flac, ogg, mp3).",
    )
    crop_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Length of a training crop, rounded down to whole code frames (default 1.0 s, DAC's 0.38 s at 44.1 kHz made a whole number of the codec's 2048-sample frames); a shorter clip is zero-padded.",
    )
    batch_size: int = Field(
        default=8, ge=1, description="Crops per optimizer step over all ranks (default 8); must divide by the ranks."
    )
    heldout_clips: int = Field(
        default=4,
        ge=0,
        description="Clips held out for evaluation, the first by a hash of their key (default 4); never cropped for training.",
    )
    seed: int = Field(default=0, description="Seed of the crops: crop i of step s is a function of (seed, s, i).")


class CodecModelConfig(_Strict):
    """Where the generator's weights start, and what of it trains."""

    init: str | None = Field(
        default=None,
        description="A released-format codec.pth (or its folder, local or s3://) loaded strictly, e.g. the released S2 codec to fine-tune (default None: random weights of `size`).",
    )
    size: Literal["released", "tiny"] = Field(
        default="released",
        description="Architecture of a random start (default 'released'; 'tiny': a few channels wide, for tests and the demo). Ignored with init.",
    )
    seed: int = Field(default=0, description="Seed of a random start and of the semantic head (default 0).")
    train: Literal["all", "decoder"] = Field(
        default="all",
        description="'all' (default) or 'decoder': freeze the encoder and quantizer and train the decoder only (adapting released weights to a new domain keeps the codes, which everything downstream depends on).",
    )


class DiscriminatorConfig(_Strict):
    """The report's three discriminators (Section 4.1)."""

    periods: list[int] = Field(
        default=[2, 3, 5, 7, 11],
        min_length=1,
        description="Periods of the multi-period discriminator (default [2, 3, 5, 7, 11], HiFi-GAN's primes: no period a multiple of another).",
    )
    resolutions: list[int] = Field(
        default=[2048, 1024, 512],
        min_length=1,
        description="FFT sizes of the multi-resolution spectrogram discriminator (default [2048, 1024, 512], DAC's: hop = size / 4).",
    )
    stft_sizes: list[int] = Field(
        default=[2048, 1024, 512, 256, 128],
        min_length=1,
        description="FFT sizes of the multi-scale complex STFT discriminator (default [2048, 1024, 512, 256, 128], EnCodec's).",
    )
    channels: int = Field(
        default=32,
        ge=1,
        description="Base width of the period and STFT discriminators (default 32, EnCodec's filters; HiFi-GAN's period discriminator grows it to 32x).",
    )


class CodecLossConfig(_Strict):
    """Generator loss = mel * L_mel + adversarial * L_adv + feature_matching * L_fm + commitment * L_commit +
    codebook * L_codebook + semantic.weight * L_semantic. Default weights are DAC's (and DualCodec's)."""

    mel: float = Field(
        default=15.0, ge=0, description="Multi-scale mel L1 (default 15, DAC's: it dominates early training)."
    )
    mel_windows: list[int] = Field(
        default=[32, 64, 128, 256, 512, 1024, 2048],
        min_length=1,
        description="Window lengths of the mel scales, hop = window / 4 (default DAC's seven, 32 to 2048).",
    )
    mel_bins: list[int] = Field(
        default=[5, 10, 20, 40, 80, 160, 320],
        min_length=1,
        description="Mel bands per scale, one per window (default DAC's: few bands for short windows).",
    )
    adversarial: float = Field(default=1.0, ge=0, description="Adversarial loss (default 1, DAC's).")
    adversarial_kind: Literal["least_squares", "hinge"] = Field(
        default="least_squares",
        description="'least_squares' (default, DAC and HiFi-GAN: smooth gradients near the boundary) or 'hinge' (EnCodec).",
    )
    feature_matching: float = Field(
        default=2.0,
        ge=0,
        description="L1 between the discriminators' features of real and decoded audio (default 2, DAC's).",
    )
    commitment: float = Field(
        default=0.25, ge=0, description="VQ commitment, encoder output to its code (default 0.25, DAC's and VQ-VAE's)."
    )
    codebook: float = Field(
        default=1.0,
        ge=0,
        description="VQ codebook loss, code to encoder output: codebooks learn by gradient, not EMA (default 1, DAC's).",
    )
    quantizer_dropout: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Fraction of crops that use only the first k residual codebooks, k uniform in 0..9 (default 0.5, DAC's: the codes stay usable when truncated); the semantic codebook is always used.",
    )

    @model_validator(mode="after")
    def _scales(self) -> CodecLossConfig:
        if len(self.mel_windows) != len(self.mel_bins):
            raise ValueError("loss.mel_bins needs one entry per loss.mel_windows entry")
        return self


class SemanticConfig(_Strict):
    """Semantic distillation (Mimi): a head on the first codebook's quantized features regresses w2v-BERT 2.0's
    layer-16 activations, resampled to the codec's frame rate."""

    enabled: bool = Field(default=True, description="Distil the teacher into the first codebook (default true).")
    teacher: str = Field(
        default="facebook/w2v-bert-2.0",
        description="The w2v-BERT 2.0 teacher: a hub id, a local folder or s3:// (default 'facebook/w2v-bert-2.0').",
    )
    layer: int = Field(
        default=16,
        ge=1,
        description="Teacher layer whose output is regressed (default 16, the report's); at most the teacher's layer count.",
    )
    weight: float = Field(
        default=1.0, ge=0, description="Weight of the distillation loss (default 1, Mimi's semantic weight)."
    )
    kind: Literal["cosine", "mse"] = Field(
        default="cosine",
        description="'cosine' (default, Mimi's: 1 - cosine similarity per frame, scale-free) or 'mse' on the features.",
    )


class CodecOptimizerConfig(_Strict):
    """One AdamW for the generator (with the semantic head), one for the discriminators; exponential decay."""

    lr_generator: float = Field(default=1e-4, gt=0, description="Generator learning rate (default 1e-4, DAC's).")
    lr_discriminator: float = Field(
        default=1e-4, gt=0, description="Discriminators' learning rate (default 1e-4, DAC's)."
    )
    betas: tuple[float, float] = Field(default=(0.8, 0.99), description="AdamW betas (default [0.8, 0.99], DAC's).")
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay (default 0.01, torch's and DAC's).")
    decay: float = Field(
        default=0.999996,
        gt=0,
        le=1,
        description="Per-step exponential learning-rate decay (default 0.999996, DAC's: x0.02 after 1M steps).",
    )
    grad_clip_generator: float = Field(
        default=1000.0,
        ge=0,
        description="Clip the generator's gradient norm (default 1000, DAC's: only catches blow-ups; 0 = none).",
    )
    grad_clip_discriminator: float = Field(
        default=10.0, ge=0, description="Clip the discriminators' gradient norm (default 10, DAC's; 0 = none)."
    )
    discriminator_warmup_steps: int = Field(
        default=0,
        ge=0,
        description="Steps in which the discriminators train but the generator gets no adversarial or feature-matching loss (default 0; a few thousand when fine-tuning released weights against fresh discriminators).",
    )


class CodecEvalConfig(_Strict):
    every: int = Field(
        default=1000,
        ge=1,
        description="Evaluate on the held-out clips every this many steps, and before the first and after the last (default 1000).",
    )
    max_seconds: float = Field(
        default=10.0, gt=0, description="Each held-out clip's first seconds that are evaluated (default 10)."
    )


class CodecRuntimeConfig(RunConfig):
    """The trainer's run settings (schemas.training.RunConfig), with the codec's run folder; compute runs in `dtype`,
    losses, spectrograms and the codebook search in float32."""

    out: str = Field(
        default="codec_out",
        description="Run folder, local or s3:// (default 'codec_out'): metrics.jsonl, eval.jsonl, eval.json, checkpoints/, codec/ (codec.pth in the released format), eval/ (WAVs).",
    )
    seed: int = Field(default=0, description="Seed of quantizer dropout (default 0), drawn per step and crop.")


class CodecTrainConfig(_Strict):
    data: CodecDataConfig = Field(description="Required: the audio (data.sources).")
    codec: CodecModelConfig = Field(default_factory=CodecModelConfig)
    discriminators: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)
    loss: CodecLossConfig = Field(default_factory=CodecLossConfig)
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)
    optimizer: CodecOptimizerConfig = Field(default_factory=CodecOptimizerConfig)
    eval: CodecEvalConfig = Field(default_factory=CodecEvalConfig)
    runtime: CodecRuntimeConfig = Field(default_factory=CodecRuntimeConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
