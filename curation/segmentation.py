"""Segmentation stage: a decoded file row in, one row per utterance out (or one reject row)."""

from __future__ import annotations

import json

import numpy as np

from curation.batch import COLUMNS, PCM_WIDTH, Batch, as_lists, audio, reject_row
from curation.keys import segment_key
from curation.segment import plan_segments
from models.vad import SileroVad
from schemas.config import SegmentationConfig
from schemas.sample import AudioFacts, Sample, SeparationInfo, SourceRef, VadInfo

# segment index = piece * stride + index in piece: keys stay unique and in time order across pieces
# (a 600 s piece holds at most 200 utterances of the 3 s minimum)
PIECE_KEY_STRIDE = 1000


class SegmentationStage:
    def __init__(self, cfg: SegmentationConfig):
        self.cfg = cfg
        self.vad = SileroVad(cfg.model)

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        out: Batch = {c: [] for c in COLUMNS}
        todo = [i for i, r in enumerate(batch["reject_json"]) if not r]
        probs = dict(zip(todo, self.vad.speech_probs([audio(batch, i) for i in todo], batch["sample_rate"][todo[0]] if todo else 16000)))
        for i in range(len(batch["key"])):
            rows = self._rows(batch, i, probs.get(i))
            for row in rows:
                row["file_rows"] = len(rows)
                for c in COLUMNS:
                    out[c].append(row[c])
        return out

    def _rows(self, batch: Batch, i: int, probs: np.ndarray | None) -> list[dict]:
        base = {c: batch[c][i] for c in COLUMNS}
        if probs is None:  # rejected upstream: pass through
            return [base]
        uri, sr = batch["source_uri"][i], batch["sample_rate"][i]
        n = len(batch["pcm"][i]) // PCM_WIDTH
        meta = json.loads(batch["meta_json"][i])
        kept, short = plan_segments(probs, self.vad.frame_s, n / sr, self.cfg)
        if not kept and not short:
            return [reject_row(base, "segmentation", "no_speech", f"no speech above threshold {self.cfg.threshold} in {n / sr:.1f} s")]
        source_audio = AudioFacts(**meta["audio"])
        offset = meta.get("offset_s", 0.0)
        separation = SeparationInfo(**meta["separation"]) if "separation" in meta else None
        rows = []
        for idx, span in enumerate(sorted(kept + short, key=lambda s: s.start_s)):
            key = segment_key(uri, batch["piece"][i] * PIECE_KEY_STRIDE + idx)
            a, b = int(round(span.start_s * sr)), min(int(round(span.end_s * sr)), n)
            s = Sample(
                key=key,
                source=SourceRef(uri=uri, start_s=offset + a / sr, end_s=offset + b / sr, audio=source_audio, text=meta.get("text"), speaker=meta.get("speaker"), language=meta.get("language")),
                audio=AudioFacts(sample_rate=sr, channels=1, duration_s=(b - a) / sr, format="FLAC"),
                separation=separation,
                vad=VadInfo(model_id=self.vad.model_id, threshold=self.cfg.threshold, speech_s=span.speech_s),
            )
            row = {**base, "key": key, "pcm": batch["pcm"][i][a * PCM_WIDTH : b * PCM_WIDTH], "sample_json": s.model_dump_json(exclude_none=True), "meta_json": ""}
            if span in short:
                reject_row(row, "segmentation", "segment_too_short", f"{span.duration_s:.2f} s < min {self.cfg.min_s} s after merging")
            rows.append(row)
        return rows
