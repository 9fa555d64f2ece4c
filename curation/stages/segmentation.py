"""Segmentation: a decoded piece in, one row per utterance out (or one reject row)."""

from __future__ import annotations

import numpy as np

from curation.io.keys import segment_key
from curation.policy.segments import plan_segments
from curation.row import PCM_WIDTH, Row, pcm_waveform
from curation.stages.base import CurationStage
from models import registry
from models.signal import effective_bandwidth_hz
from schemas.config import PIECE_KEY_STRIDE, SegmentationConfig
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, Sample, SourceRef, VadInfo


class SegmentationStage(CurationStage):
    name = Stage.SEGMENTATION

    def __init__(self, cfg: SegmentationConfig, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        self.cfg = cfg

    def setup(self) -> None:
        self.vad = registry.build("vad", self.cfg.model, "segmentation.model")

    def process_batch(self, rows: list[Row]) -> list[Row]:
        probs = dict((id(r), p) for r, p in self.call_model(rows, self.vad.speech_probs, RejectReason.STAGE_FAILED))
        out: list[Row] = []
        for row in rows:
            pieces = self._segments(row, probs[id(row)]) if id(row) in probs else [row]
            for piece in pieces:
                piece.file_rows = len(pieces)
            out.extend(pieces)
        return out

    def _segments(self, row: Row, probs: np.ndarray) -> list[Row]:
        sr, n = row.sample_rate, row.n_samples
        kept, short = plan_segments(
            probs, self.vad.frame_s, n / sr, self.cfg, whole_input=row.piece == 0 and row.last_piece
        )
        if not kept and not short:
            return [
                row.rejected(
                    self.name,
                    RejectReason.NO_SPEECH,
                    f"no speech above threshold {self.cfg.threshold} in {n / sr:.1f} s",
                )
            ]
        src = row.source
        segments = []
        for idx, span in enumerate(sorted(kept + short, key=lambda s: s.start_s)):
            key = segment_key(row.source_uri, row.piece * PIECE_KEY_STRIDE + idx)
            audio, analysis = row.span(span.start_s, span.end_s)
            a = int(round(span.start_s * sr))
            b = a + len(audio) // PCM_WIDTH
            sample = Sample(
                key=key,
                source=SourceRef(
                    uri=row.source_uri,
                    start_s=src.offset_s + a / sr,
                    end_s=src.offset_s + b / sr,
                    audio=src.audio,
                    text=src.text,
                    speaker=src.speaker,
                    language=src.language,
                ),
                audio=AudioFacts(
                    sample_rate=sr,
                    channels=1,
                    duration_s=(b - a) / sr,
                    format="FLAC",
                    bandwidth_hz=effective_bandwidth_hz(pcm_waveform(audio), sr),
                ),
                separation=row.separation,
                vad=VadInfo(model_id=self.vad.model_id, threshold=self.cfg.threshold, speech_s=span.speech_s),
                # a manifest's language until transcription decides (and stays so when it does not run)
                language=src.language,
                language_source="manifest" if src.language else "unknown",
            )
            segment = row.copy(key=key, audio=audio, analysis=analysis, sample=sample)
            if span in short:
                segment.rejected(
                    self.name,
                    RejectReason.SEGMENT_TOO_SHORT,
                    f"{span.duration_s:.2f} s < min {self.cfg.min_s} s after merging",
                )
            segments.append(segment)
        return segments
