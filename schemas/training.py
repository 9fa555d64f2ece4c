"""Training configuration of the Dual-AR model: `s2 train --config train.yaml` and `python -m jobs.train`.

Layers as for curation (schemas.config.layered): the defaults below <- the YAML file <- `--set key.path=value`.
Every default is stated in its field's description. Sections: data, model, optimizer, loss, lora, runtime, eval, ray.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """The shards to stream (tokenized: KEY.json + KEY.codes.npy per sample) and how rows are packed."""

    shards: list[str] = Field(
        default_factory=list,
        description="Shard URIs (local paths or s3://); default [] (use `index`). Exactly one of shards and index.",
    )
    index: str | None = Field(
        default=None,
        description="A curation run's index.json (local or s3://), shard urls relative to its folder; default None (use `shards`).",
    )
    seq_len: int = Field(
        default=4096,
        ge=16,
        description="Tokens per packed row (default 4096); a sample longer than this, even without its reference, is skipped and counted.",
    )
    shuffle_buffer: int = Field(
        default=1000,
        ge=1,
        description="Samples per shuffle block (default 1000): each loader stream reads this many, permutes them, and yields them; shard order is reshuffled every epoch.",
    )
    seed: int = Field(default=0, description="Seed of shard order, shuffling and reference choice (default 0).")
    num_workers: int = Field(
        default=1,
        ge=0,
        description="Loader processes per rank (default 1; 0 = in the training process). Streams = world size x max(1, num_workers): the same streams give the same global batches.",
    )
    dialogue_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Mix ratio of dialogues: the probability that a segment with a source speaker starts a sample of consecutive segments of its source, with their speaker turns (default 0.0: every sample one segment).",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=16,
        description="Most tokens of a dialogue sample (default None = seq_len); its segments are joined while their frames and text fit.",
    )
    dialogue_pause_s: float = Field(
        default=0.5,
        ge=0,
        description="A gap between two segments of a dialogue at least this long (seconds) becomes a [pause] tag before the next turn (default 0.5).",
    )
    eval_fraction: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Fraction of sources held out for evaluation, by a hash of source.uri, so that no source (and none of its speakers' turns) is on both sides (default 0.0: none; eval.index is the other way).",
    )
    references: bool = Field(
        default=True,
        description="Put another segment of the same speaker (source.speaker) or source (source.uri), from the same shard, in the system turn as the voice reference (default true).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if bool(self.shards) == (self.index is not None):
            raise ValueError("set exactly one of data.shards and data.index")
        return self


class EvalConfig(_Strict):
    """Evaluation during training: held-out loss and audio a person can listen to."""

    every: int = Field(
        default=0, ge=0, description="Held-out loss every this many steps, in metrics.jsonl (default 0 = never)."
    )
    index: str | None = Field(
        default=None,
        description="A separate index.json of held-out shards (default None: the data.eval_fraction split of data's shards).",
    )
    batches: int = Field(
        default=4, ge=1, description="Micro-batches per rank in the held-out loss, the same every time (default 4)."
    )
    samples_every: int = Field(
        default=0,
        ge=0,
        description="Generate the prompts and decode them to runtime.out/samples/step-N/*.wav (with the text in *.txt) every this many steps (default 0 = never).",
    )
    prompts: list[str] = Field(
        default_factory=lambda: ["<|speaker:0|>The quick brown fox jumps over the lazy dog."],
        min_length=1,
        description="Texts of the samples (rich transcripts; default one sentence).",
    )
    codec: str | None = Field(
        default=None, description="The S2 codec (`codec.pth` or its folder) that decodes the samples (default None)."
    )
    max_new_tokens: int = Field(default=400, ge=1, description="Frames at most per sample (default 400).")
    seed: int = Field(default=0, description="Seed of the samples' sampling (default 0): the same at every step.")

    @model_validator(mode="after")
    def _codec_given(self) -> EvalConfig:
        if self.samples_every and not self.codec:
            raise ValueError("eval.codec is required when eval.samples_every > 0")
        return self


class TinyModelConfig(_Strict):
    """Sizes of a tiny random-init model (model.init = tiny), for tests and the demo."""

    dim: int = Field(default=32, gt=0, description="Width of both ARs (default 32; 4 heads, 2 KV heads).")
    n_layer: int = Field(default=2, gt=0, description="Layers of both ARs (default 2).")
    num_codebooks: int = Field(default=10, gt=1, description="Codebooks per frame (default 10, the S2 codec's).")
    codebook_size: int = Field(
        default=4096, gt=1, description="Entries per codebook = semantic tokens (default 4096, the S2 codec's)."
    )


class ModelConfig(_Strict):
    """Where the weights start. The codebook-embedding scale is the model's own (its config.json)."""

    init: Literal["s2", "qwen3", "tiny"] = Field(
        default="tiny",
        description="'s2': a released-format checkpoint folder (path); 'qwen3': a transformers Qwen3 hub id or folder (path) extended with the S2 vocabulary; 'tiny': a tiny random-init model (default).",
    )
    path: str | None = Field(
        default=None, description="Checkpoint folder or hub id for init s2 / qwen3 (default None)."
    )
    seed: int = Field(
        default=0,
        description="Seed of random weights: the tiny model, the new rows and the fast AR of a qwen3 start (default 0).",
    )
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig, description="Sizes when init is 'tiny'.")
    attention: Literal["auto", "sdpa", "flex"] = Field(
        default="auto",
        description="Packed attention kernel: 'auto' (default) flex_attention with block masks on CUDA, sdpa with a dense mask elsewhere; 'sdpa'; 'flex'.",
    )

    @model_validator(mode="after")
    def _path_given(self) -> ModelConfig:
        if self.init != "tiny" and not self.path:
            raise ValueError(f"model.path is required when model.init is '{self.init}'")
        return self


class OptimizerConfig(_Strict):
    """AdamW with two learning rates (the report, Section 4.2) and a warmup-stable-decay schedule."""

    lr_text: float = Field(
        default=1e-4,
        ge=0,
        description="Peak learning rate of the text foundation: the slow AR's layers, norm and token embeddings (default 1e-4).",
    )
    lr_audio: float = Field(
        default=1e-3,
        ge=0,
        description="Peak learning rate of the audio modules: codebook embeddings and the fast AR (default 1e-3).",
    )
    betas: tuple[float, float] = Field(default=(0.9, 0.95), description="AdamW betas (default [0.9, 0.95]).")
    eps: float = Field(default=1e-8, gt=0, description="AdamW epsilon (default 1e-8).")
    weight_decay: float = Field(
        default=0.1,
        ge=0,
        description="Decoupled weight decay of matrices and embedding tables; norms and biases get none (default 0.1).",
    )
    warmup_steps: int = Field(default=100, ge=0, description="Linear warmup from 0 to the peak (default 100 steps).")
    stable_steps: int = Field(default=800, ge=0, description="Steps at the peak after warmup (default 800).")
    decay_steps: int = Field(
        default=100,
        ge=0,
        description="Linear decay to min_lr_ratio x peak after the stable phase (default 100); the rate stays there afterwards.",
    )
    min_lr_ratio: float = Field(
        default=0.0, ge=0, le=1, description="Final learning rate as a fraction of the peak (default 0.0)."
    )
    grad_clip: float = Field(
        default=1.0, ge=0, description="Clip the global gradient norm to this (default 1.0; 0 = no clipping)."
    )
    accumulation: int = Field(default=1, ge=1, description="Micro-batches per optimizer step on each rank (default 1).")


class LossConfig(_Strict):
    """Eq. 2-4: L = lambda_slow L_slow + lambda_fast L_fast."""

    lambda_slow: float = Field(
        default=1.0, ge=0, description="Weight of the slow AR's masked token cross-entropy (default 1.0)."
    )
    lambda_fast: float = Field(
        default=1.0, ge=0, description="Weight of the fast AR's codebook cross-entropy (default 1.0)."
    )
    mode: Literal["pretrain", "sft"] = Field(
        default="pretrain",
        description="Codebook weights w_k: 'pretrain' 1 for every k including the semantic k=0 (default); 'sft' 0 for k=0 and sft_decay^(k-1) for k>=1.",
    )
    sft_decay: float = Field(
        default=0.8, gt=0, le=1, description="Ratio of successive codebook weights in sft mode (default 0.8)."
    )
    codebook_weights: list[float] | None = Field(
        default=None, description="Explicit w_0..w_{N-1}, overriding mode (default None)."
    )
    learn: Literal["assistant", "non_reference"] = Field(
        default="assistant",
        description="The tokens L_slow learns (m_t of Eq. 2): 'assistant' (default) the assistant's codes and final <|im_end|>, as the released code; 'non_reference' every token after the system turn (the user turn's text too), Eq. 2 as printed.",
    )
    lambda_text: float = Field(
        default=1.0,
        ge=0,
        description="lambda_t of Eq. 2 for the learned tokens outside the assistant turn when learn is 'non_reference' (default 1.0); the assistant's weigh 1.",
    )
    chunk_tokens: int = Field(
        default=4096,
        gt=0,
        description="Learned tokens per chunk of the LM head's cross-entropy: the [tokens, vocab] logits exist one chunk at a time (default 4096).",
    )

    @model_validator(mode="after")
    def _weights(self) -> LossConfig:
        if self.codebook_weights is not None and (
            min(self.codebook_weights, default=0) < 0 or sum(self.codebook_weights) <= 0
        ):
            raise ValueError("loss.codebook_weights must be non-negative with a positive sum")
        return self


class LoraConfig(_Strict):
    """LoRA (PEFT) for fine-tuning a voice: only the adapters train; the final export merges them."""

    enabled: bool = Field(
        default=False,
        description="Train LoRA adapters instead of all weights (default false in training; GRPO requires true).",
    )
    r: int = Field(default=16, gt=0, description="Rank (default 16, the report's).")
    alpha: float = Field(default=64.0, gt=0, description="Scale numerator (default 64, the report's).")
    rslora: bool = Field(
        default=True, description="Rank-stabilised scaling alpha/sqrt(r) (default true, the report's)."
    )
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the adapters' input (default 0.0).")
    targets: list[str] = Field(
        default_factory=lambda: ["w1", "w2", "w3"],
        description="Linear layers to adapt, by name (default the MLPs: w1, w2, w3; also wqkv, wo).",
    )


class RunConfig(_Strict):
    """Precision, logging, checkpoints and length of a training run: what the Dual-AR trainer and the codec's share."""

    dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16",
        description="Compute dtype (default bfloat16: autocast, or FSDP's mixed precision, over float32 weights).",
    )
    fsdp: bool | None = Field(
        default=None, description="Shard with FSDP2 fully_shard (default None = when the world size is above one)."
    )
    max_steps: int = Field(default=1000, ge=1, description="Optimizer steps of the run (default 1000).")
    log_every: int = Field(default=10, ge=1, description="Write a metrics line every this many steps (default 10).")
    ckpt_every: int = Field(
        default=500, ge=1, description="Checkpoint every this many steps (default 500); the last step always is."
    )
    keep_checkpoints: int = Field(default=2, ge=1, description="Checkpoints kept, newest first (default 2).")
    out: str = Field(
        default="train_out",
        description="Run folder, local or s3:// (default 'train_out'): metrics.jsonl, checkpoints/, model/ (the released format).",
    )
    resume: bool = Field(
        default=True, description="Continue from the newest checkpoint in `out` when there is one (default true)."
    )
    device: str = Field(
        default="auto",
        description="'auto' (cuda:LOCAL_RANK when CUDA is available, else cpu), 'cpu' or 'cuda[:N]' (default 'auto').",
    )
    cpu_threads: int | None = Field(
        default=None, ge=1, description="torch threads of the training process (default None = torch's choice)."
    )
    seed: int = Field(default=0, description="Seed of torch's generators (default 0), offset by the rank.")


class RuntimeConfig(RunConfig):
    """Precision, memory, logging, checkpoints and length of the run."""

    compile: bool | None = Field(
        default=None, description="torch.compile every transformer block (default None = on CUDA, off on CPU)."
    )
    activation_checkpointing: bool = Field(
        default=False, description="Recompute each block in the backward pass (default false)."
    )
    micro_batch: int = Field(default=1, ge=1, description="Packed rows per micro-batch (default 1).")
    async_checkpoint: bool = Field(
        default=False,
        description="Save checkpoints in the background (default false): training goes on once the shards are copied to host memory; the write, an S3 upload and `latest` follow in a thread.",
    )
    peak_tflops: float | None = Field(
        default=None,
        gt=0,
        description="Peak of one device for MFU in TFLOP/s (default None: the bf16 dense peak of known GPUs, a measured matmul rate on CPU).",
    )


# Ray Train's worker group start, bounded (pipelines/train.py): the training and GRPO jobs alike
StartTimeout = Annotated[
    float,
    Field(
        gt=0,
        description="Seconds the worker group may take to be placed and started, at the start and after each restart (default 600, time for an autoscaler to add nodes): past it the run stops in one line instead of waiting forever for resources that something else holds.",
    ),
]


class RayConfig(_Strict):
    """`python -m jobs.train`: the same loop under Ray Train."""

    workers: int = Field(default=2, ge=1, description="Training workers (default 2), one process each.")
    use_gpu: bool = Field(default=False, description="One GPU per worker and NCCL (default false: CPU and gloo).")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs reserved per worker (default 1).")
    address: str | None = Field(
        default=None, description="Cluster address (default None = RAY_ADDRESS or a local Ray)."
    )
    max_failures: int = Field(
        default=3,
        ge=-1,
        description="Restarts of the worker group after a worker dies (default 3; -1 = without limit): it resumes from the last reported checkpoint.",
    )
    start_timeout_s: StartTimeout = 600.0


class TrainConfig(_Strict):
    data: DataConfig = Field(description="Required: the shards (data.shards or data.index).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _held_out_data(self) -> TrainConfig:
        if self.eval.every and not (self.data.eval_fraction > 0 or self.eval.index):
            raise ValueError("eval.every > 0 needs held-out data: set data.eval_fraction or eval.index")
        return self
