"""Where an input or segment can end other than in a shard: the stage that stopped it and the reason code.

Both are stable strings (they are columns of rejects.parquet); `s2 schema reject` prints them with their meaning.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    DECODE = "decode"
    SEPARATION = "separation"
    SEGMENTATION = "segmentation"
    QUALITY = "quality"
    TRANSCRIPTION = "transcription"
    CODEC = "codec"
    ENCODE = "encode"


class RejectReason(StrEnum):
    """Why an input or a segment was not kept; REASON_DOCS says what each means (`s2 schema reject` lists both)."""

    # decode
    MISSING_FILE = "missing_file"
    UNREADABLE_CONTAINER = "unreadable_container"
    NO_AUDIO_STREAM = "no_audio_stream"
    DECODE_FAILED = "decode_failed"
    EMPTY_AUDIO = "empty_audio"
    NON_FINITE_SAMPLES = "non_finite_samples"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    # separation
    SEPARATION_FAILED = "separation_failed"
    BACKGROUND_TOO_STRONG = "background_too_strong"
    # segmentation
    NO_SPEECH = "no_speech"
    SEGMENT_TOO_SHORT = "segment_too_short"
    # quality
    INVALID_AUDIO = "invalid_audio"
    QUALITY_FAILED = "quality_failed"
    QUALITY_BELOW_THRESHOLD = "quality_below_threshold"
    NARROW_BAND = "narrow_band"
    # transcription
    BAD_ROW = "bad_row"
    TRANSCRIPTION_FAILED = "transcription_failed"
    EMPTY_TRANSCRIPT = "empty_transcript"
    MALFORMED_TRANSCRIPT = "malformed_transcript"
    SIDECAR_DISAGREEMENT = "sidecar_disagreement"
    REPEATED_NGRAM = "repeated_ngram"
    RATE_OUTLIER = "rate_outlier"
    LANGUAGE_MISMATCH = "language_mismatch"
    LANGUAGE_UNSUPPORTED = "language_unsupported"
    LOW_ASR_CONFIDENCE = "low_asr_confidence"
    UNKNOWN_TAG = "unknown_tag"
    TOO_MANY_SPEAKERS = "too_many_speakers"
    OVERLAPPING_SPEECH = "overlapping_speech"
    # codec
    TOO_SHORT_FOR_CODEC = "too_short_for_codec"
    SILENT = "silent"
    CODEC_FAILED = "codec_failed"
    BAD_SAMPLE = "bad_sample"
    # any stage whose error policy is 'reject'
    STAGE_FAILED = "stage_failed"


REASON_DOCS: dict[RejectReason, str] = {
    RejectReason.MISSING_FILE: "the input does not exist (or vanished after listing)",
    RejectReason.UNREADABLE_CONTAINER: "neither libsndfile nor FFmpeg can open the file",
    RejectReason.NO_AUDIO_STREAM: "a container (e.g. video) without an audio track",
    RejectReason.DECODE_FAILED: "decoding failed part-way (truncated or corrupt data)",
    RejectReason.EMPTY_AUDIO: "no samples decoded",
    RejectReason.NON_FINITE_SAMPLES: "NaN or infinite samples",
    RejectReason.TOO_LONG: "longer than decode.max_duration_s (a header claiming more is not trusted)",
    RejectReason.TOO_SHORT: "shorter than decode.min_duration_s",
    RejectReason.SEPARATION_FAILED: "the separator failed on this input or produced non-finite audio",
    RejectReason.BACKGROUND_TOO_STRONG: "music or noise so loud against the speech (the separator's vocals vs residual "
    "below separation.gate.min_snr_db) that the separated speech cannot be trusted",
    RejectReason.NO_SPEECH: "no speech above segmentation.threshold",
    RejectReason.SEGMENT_TOO_SHORT: "an utterance shorter than segmentation.min_s after merging",
    RejectReason.INVALID_AUDIO: "a segment without audio reached scoring",
    RejectReason.QUALITY_FAILED: "the quality scorer failed on this segment",
    RejectReason.QUALITY_BELOW_THRESHOLD: "a quality dimension below its minimum (quality.thresholds); detail lists each",
    RejectReason.NARROW_BAND: "the audio's measured band (audio.bandwidth_hz) is below quality.min_bandwidth_hz, e.g. "
    "telephone speech resampled to a full-band rate",
    RejectReason.BAD_ROW: "a segment that cannot be read for transcription (no audio)",
    RejectReason.TRANSCRIPTION_FAILED: "the transcriber failed on this segment",
    RejectReason.EMPTY_TRANSCRIPT: "no words once tags are removed",
    RejectReason.MALFORMED_TRANSCRIPT: "model output or sidecar text that breaks the transcript grammar",
    RejectReason.SIDECAR_DISAGREEMENT: "ASR and sidecar transcript differ by more than transcription.max_sidecar_wer",
    RejectReason.REPEATED_NGRAM: "an n-gram repeated back to back too often (a decoding loop)",
    RejectReason.RATE_OUTLIER: "words (or characters) per second of speech implausible",
    RejectReason.LANGUAGE_MISMATCH: "the declared language or the text's script contradicts transcription.language",
    RejectReason.LANGUAGE_UNSUPPORTED: "speech in a language the transcriber does not know: given as such (manifest or "
    "config), or, offline, speech the English recogniser cannot vouch for (its evidence is that of foreign speech: "
    "transcription.language_gate)",
    RejectReason.LOW_ASR_CONFIDENCE: "the recogniser's own evidence says its transcript cannot be trusted (low word "
    "confidence and poor acoustic fit for speech given as its language: transcription.language_gate)",
    RejectReason.UNKNOWN_TAG: "a tag outside the registry, with transcription.unknown_tags=reject",
    RejectReason.TOO_MANY_SPEAKERS: "more distinct speakers in the segment than transcription.max_speakers (after "
    "source-level diarization), e.g. two voices in a segment of a single-speaker job",
    RejectReason.OVERLAPPING_SPEECH: "more overlapped speech (two voices at once: sample.overlap_s) than "
    "transcription.max_overlap_s; overlaps blur the timbre a TTS learns",
    RejectReason.TOO_SHORT_FOR_CODEC: "shorter than one codec frame (2048 samples at 44.1 kHz for S2)",
    RejectReason.SILENT: "digital silence: nothing for the codec to encode",
    RejectReason.CODEC_FAILED: "the codec failed on this segment",
    RejectReason.BAD_SAMPLE: "a shard member that cannot be read back (s2 tokenize): unreadable audio or record",
    RejectReason.STAGE_FAILED: "a stage raised on this row; detail names the error",
}

# what `s2 schema reject` (the JSON Schema's description of RejectReason) shows
RejectReason.__doc__ = "Why an input or a segment was not kept:\n" + "\n".join(
    f"- {r.value}: {REASON_DOCS[r]}" for r in RejectReason
)
