"""The typed row every stage reads and writes: one input piece, or one segment, on its way to a shard.

A row carries its audio twice at most: full band (`audio`: the source's own rate up to decode.max_output_rate, or
the separator's output), which is what the shard holds and the codec reads, and a 16 kHz analysis copy for the
models that run at that rate (VAD, quality, transcription, speakers), made once, where the full-band audio is made;
a row whose audio is already at the analysis rate holds no copy. A row is a plain object in a stage; it is turned
into JSON once, by the writer (KEY.json, manifest, rejects). Between Ray Data operators it travels as columns
(`to_columns`/`from_columns`): the audio bytes, their encoding and rate, the analysis bytes, and the rest of the
row as one Python object. A rejected row keeps flowing, untouched
by later stages, so that every input ends in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from models.signal import resample
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, Reject, Sample, SeparationInfo

if TYPE_CHECKING:
    from curation.policy.diarization import SegmentVoices

PCM_DTYPE = "<i2"
PCM_WIDTH = 2  # bytes per sample
_SCALE = 32768.0  # libsndfile's: 16-bit files decode to exactly these floats, and encode back bit for bit


class AudioEncoding(StrEnum):
    NONE = ""  # no audio (an input before decoding, a rejected row)
    PCM16 = "pcm_s16le"  # mono 16-bit little-endian PCM: half the bytes of float32, the precision of the shards
    FLAC = "flac"  # encoded for the shard


def pcm_bytes(x: np.ndarray) -> bytes:
    """float samples in [-1, 1) -> 16-bit PCM bytes (louder ones clip, as the 16-bit output would)."""
    x = np.asarray(x, dtype=np.float32)
    # a float64 sum is finite iff every sample is (audio cannot overflow it), with no full-size temporary
    if not np.isfinite(np.sum(x, dtype=np.float64)):
        raise ValueError("non-finite samples (NaN or inf)")
    return np.clip(np.rint(x * _SCALE), -_SCALE, _SCALE - 1).astype(PCM_DTYPE).tobytes()


def pcm_waveform(pcm: bytes) -> np.ndarray:
    """16-bit PCM bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype=PCM_DTYPE).astype(np.float32) * np.float32(1 / _SCALE)


def analysis_copy(x: np.ndarray, sample_rate: int, analysis_rate: int) -> np.ndarray:
    """The samples the analysis models read: `x` taken to `analysis_rate` (itself when already there)."""
    return x if sample_rate == analysis_rate else resample(x, sample_rate, analysis_rate)


@dataclass
class SourceInfo:
    """What is known of the input file as a whole: given with it (sidecar, manifest columns) or found by decode."""

    sidecar_uri: str | None = None
    text: str | None = None
    speaker: str | None = None
    language: str | None = None
    audio: AudioFacts | None = None  # the header's facts; the last piece gets the decoded duration
    offset_s: float = 0.0  # where this piece starts in the input


@dataclass
class SpeakerEvidence:
    """What source-level diarization (curation.stages.source.SourceSpeakers) needs of a transcribed segment: its
    voices (windows and their embeddings), and the text its turns are made of when it is not the ASR's words (a
    sidecar's), or whether its turns are the transcriber's own (kept as written, given source ids). Travels with the
    row to its writer; never written to KEY.json."""

    voices: SegmentVoices
    text: str | None = None
    model_turns: bool = False


@dataclass
class Row:
    key: str  # '<16 hex>' for an input or piece, '<16 hex>_<5 digits>' for a segment
    source_uri: str
    input_index: int  # position of the input in the run plan
    unit: int  # work unit of the input (the grain of resume)
    piece: int = 0  # index of the piece of the input (long inputs are decoded in pieces)
    last_piece: bool = True
    file_rows: int = 1  # rows this piece became at segmentation: the writer knows when a piece is complete
    audio: bytes = b""  # full band: the source's rate (capped), or the separator's output rate
    encoding: AudioEncoding = AudioEncoding.NONE
    sample_rate: int = 0
    analysis: bytes = b""  # 16-bit PCM at analysis_rate for the analysis models; empty: `audio` is at that rate
    analysis_rate: int = 0
    source: SourceInfo = field(default_factory=SourceInfo)
    separation: SeparationInfo | None = None
    sample: Sample | None = None  # from segmentation on
    codes: np.ndarray | None = None  # int16 [num_codebooks, frames] from the codec (KEY.codes.npy)
    reject: Reject | None = None
    speakers: SpeakerEvidence | None = None  # from transcription on (local profile), for source-level diarization

    @property
    def live(self) -> bool:
        return self.reject is None

    @property
    def n_samples(self) -> int:
        return len(self.audio) // PCM_WIDTH if self.encoding == AudioEncoding.PCM16 else 0

    def pcm(self) -> np.ndarray:
        """The samples as stored (int16), without a copy."""
        if self.encoding != AudioEncoding.PCM16:
            raise ValueError(f"row {self.key} holds {self.encoding.value or 'no'} audio, not PCM")
        return np.frombuffer(self.audio, dtype=PCM_DTYPE)

    def waveform(self) -> np.ndarray:
        """The samples as float32 in [-1, 1)."""
        return pcm_waveform(self.pcm())

    def set_waveform(
        self, x: np.ndarray, sample_rate: int, analysis_rate: int | None = None, analysis: np.ndarray | None = None
    ) -> None:
        """Full-band samples and, with `analysis_rate` (and when they are not at it), the analysis copy resampled once
        from them (or `analysis`, that copy already made by `analysis_copy`); without, the row has no analysis copy
        yet (a later stage replaces its audio first)."""
        self.audio, self.encoding, self.sample_rate = pcm_bytes(x), AudioEncoding.PCM16, int(sample_rate)
        self.analysis_rate = int(analysis_rate or 0)
        needed = analysis_rate is not None and sample_rate != analysis_rate
        if needed and analysis is None:
            analysis = analysis_copy(x, sample_rate, analysis_rate)
        self.analysis = pcm_bytes(analysis) if needed else b""

    def analysis_waveform(self) -> np.ndarray:
        """The samples the analysis models read, as float32 at `analysis_rate`."""
        if not self.analysis:
            if self.sample_rate != self.analysis_rate:
                raise ValueError(f"row {self.key} has no analysis copy at {self.analysis_rate} Hz")
            return self.waveform()
        return pcm_waveform(self.analysis)

    def span(self, start_s: float, end_s: float) -> tuple[bytes, bytes]:
        """The full-band and analysis bytes between two times (sample-exact at each rate)."""
        a, b = int(round(start_s * self.sample_rate)), min(int(round(end_s * self.sample_rate)), self.n_samples)
        audio = self.audio[a * PCM_WIDTH : b * PCM_WIDTH]
        if not self.analysis:
            return audio, b""
        n = len(self.analysis) // PCM_WIDTH
        a2, b2 = int(round(start_s * self.analysis_rate)), min(int(round(end_s * self.analysis_rate)), n)
        return audio, self.analysis[a2 * PCM_WIDTH : b2 * PCM_WIDTH]

    def rejected(self, stage: Stage, reason: RejectReason, detail: str = "") -> Row:
        """This row, rejected: its audio is dropped (nothing downstream needs it); the Sample so far stays."""
        span = (self.sample.source.start_s, self.sample.source.end_s) if self.sample is not None else (None, None)
        self.reject = Reject(
            input=self.source_uri,
            key=self.key if "_" in self.key else None,
            stage=stage,
            reason=reason,
            detail=detail[:2000],
            start_s=span[0],
            end_s=span[1],
        )
        self.audio, self.encoding, self.analysis, self.codes, self.speakers = b"", AudioEncoding.NONE, b"", None, None
        return self

    def copy(self, **changes) -> Row:
        return replace(self, **changes)


# --- Ray Data columns -------------------------------------------------------------------------------------------

COLUMNS = ("audio", "encoding", "sample_rate", "analysis", "row")


def to_columns(rows: Iterable[Row]) -> dict[str, list]:
    """Rows -> a columnar batch: audio bytes, encoding and rate as their own columns, the rest as one object."""
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for r in rows:
        out["audio"].append(r.audio)
        out["encoding"].append(r.encoding.value)
        out["sample_rate"].append(r.sample_rate)
        out["analysis"].append(r.analysis)
        out["row"].append(replace(r, audio=b"", analysis=b""))
    return out


def from_columns(batch: Mapping[str, Any]) -> list[Row]:
    return [
        replace(r, audio=bytes(a), encoding=AudioEncoding(str(e)), sample_rate=int(sr), analysis=bytes(an))
        for a, e, sr, an, r in zip(
            batch["audio"], batch["encoding"], batch["sample_rate"], batch["analysis"], batch["row"]
        )
    ]
