"""R_Pref: the curation quality model's judgement of the generated audio.

Where the model gives P(good) for the configured dimension (the w2v-BERT head: `extra['p_good_<dim>']`) that is
the reward; otherwise its MOS on that dimension (DNSMOS: 1-5) mapped linearly from `preference.mos_range`. Every
score the model gives is logged as a component (`quality.<name>`).
"""

from __future__ import annotations

from models.rewards.base import ModelReward, Prepared, normalise
from schemas.rewards import AudioLimits, PreferenceConfig, RewardResult


class PreferenceReward(ModelReward):
    name = "quality"

    def __init__(self, scorer, cfg: PreferenceConfig, limits: AudioLimits):
        super().__init__(limits)
        if cfg.dimension not in scorer.dimensions:
            raise ValueError(
                f"preference.dimension: {scorer.model_id} scores {', '.join(scorer.dimensions)}, not {cfg.dimension!r}"
            )
        self.scorer, self.cfg = scorer, cfg
        self.sample_rate = scorer.sample_rate
        self.metadata = {"quality.model": scorer.model_id}

    def _score(self, prepared: list[Prepared]) -> list[RewardResult]:
        out = []
        for q in self.scorer.score([p.audio for p in prepared], self.sample_rate):
            p_good = q.extra.get(f"p_good_{self.cfg.dimension}")
            mos = getattr(q, self.cfg.dimension)
            score = float(p_good) if p_good is not None else normalise(mos, self.cfg.mos_range)
            components = {"quality": score} | {f"quality.{k}": float(v) for k, v in (q.dimensions() | q.extra).items()}
            out.append(RewardResult(score=score, components=components, metadata=self.metadata))
        return out
