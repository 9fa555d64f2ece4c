"""R_SIM: cosine similarity of the speaker embeddings of the generated audio and the reference voice, mapped onto
[0, 1] from `similarity.cosine_range`."""

from __future__ import annotations

import numpy as np

from models.rewards.base import ModelReward, Prepared, normalise
from schemas.rewards import AudioLimits, RewardResult, SimilarityConfig


class SimilarityReward(ModelReward):
    name = "similarity"
    needs_reference = True

    def __init__(self, embedder, cfg: SimilarityConfig, limits: AudioLimits):
        super().__init__(limits)
        self.embedder, self.cfg = embedder, cfg
        self.sample_rate = embedder.sample_rate
        self.metadata = {"similarity.model": embedder.model_id}

    def _score(self, prepared: list[Prepared]) -> list[RewardResult]:
        # generated and reference voices in one call: one batch through the model
        emb = self.embedder.embed([p.audio for p in prepared] + [p.reference for p in prepared], self.sample_rate)
        n = len(prepared)
        cosine = (emb[:n] * emb[n:]).sum(axis=1) / np.maximum(
            np.linalg.norm(emb[:n], axis=1) * np.linalg.norm(emb[n:], axis=1), 1e-12
        )
        out = []
        for c in cosine.tolist():
            score = normalise(c, self.cfg.cosine_range)
            out.append(
                RewardResult(
                    score=score, components={"similarity": score, "similarity.cosine": c}, metadata=self.metadata
                )
            )
        return out
