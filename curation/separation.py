"""Separation stage: each decoded file's audio is replaced by its vocals, at the pipeline's output rate."""

from __future__ import annotations

import json

import numpy as np

from curation.batch import Batch, as_lists, audio, live, reject, set_audio
from models.separator import load_separator
from schemas.config import SeparationConfig
from schemas.sample import SeparationInfo

STAGE = "separation"


class SeparationStage:
    """Rows arrive at the separator's native rate, or at a lower source rate that the separator takes to its
    own (pipelines.stages.decode_rate); vocals leave at `output_rate`, and `meta_json["separation"]` records
    the model and chunking for the Sample record."""

    def __init__(self, cfg: SeparationConfig, output_rate: int):
        self.cfg = cfg
        self.output_rate = output_rate
        self.separator = load_separator(cfg.model, cfg.chunk_s, cfg.overlap_s)
        self.info = SeparationInfo(model_id=self.separator.model_id, chunk_s=cfg.chunk_s, overlap_s=cfg.overlap_s).model_dump()

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        by_rate: dict[int, list[int]] = {}
        for i in live(batch):
            if not batch["pcm"][i]:
                reject(batch, i, STAGE, "separation_failed", "empty audio")
            else:
                by_rate.setdefault(int(batch["sample_rate"][i]), []).append(i)
        for rate, rows in by_rate.items():
            try:
                vocals = self.separator.vocals([audio(batch, i) for i in rows], rate, self.output_rate)
            except Exception:  # find the row that breaks the batch: retry one by one so the others survive
                vocals = [self._one(batch, i, rate) for i in rows]
            for i, v in zip(rows, vocals):
                if v is None:
                    continue
                try:
                    self._write(batch, i, v)
                except (ValueError, TypeError) as exc:  # malformed meta_json, non-finite vocals
                    reject(batch, i, STAGE, "separation_failed", f"{type(exc).__name__}: {exc}")
        return batch

    def _one(self, batch: Batch, i: int, rate: int) -> np.ndarray | None:
        try:
            return self.separator.vocals([audio(batch, i)], rate, self.output_rate)[0]
        except Exception as exc:
            reject(batch, i, STAGE, "separation_failed", f"{type(exc).__name__}: {exc}")
            return None

    def _write(self, batch: Batch, i: int, vocals: np.ndarray) -> None:
        meta = json.loads(batch["meta_json"][i] or "{}")
        meta["separation"] = self.info
        batch["meta_json"][i] = json.dumps(meta)
        set_audio(batch, i, vocals, self.output_rate)
