"""Quality stage: score every live segment in one batched call, record the scores, filter on thresholds.

Scores are written into the Sample of every scored row, rejected ones included (the report plots the
distributions of both). A row fails when any configured dimension is below its minimum (or NaN); the
reject detail lists each failed threshold with its value, e.g. 'overall 2.41 < 2.8; snr 1.90 < 2.5'.
"""

from __future__ import annotations

from collections import defaultdict

from curation.batch import Batch, as_lists, audio, live, reject, sample, set_sample
from models.quality import load_quality_scorer
from schemas.config import QualityConfig
from schemas.quality import QualityScores

STAGE = "quality"


def failed_thresholds(scores: QualityScores, thresholds: dict[str, float]) -> list[str]:
    """'<dim> <value> < <minimum>' for each threshold the scores miss; NaN always misses."""
    out = []
    for dim, minimum in thresholds.items():
        value = getattr(scores, dim)
        if value is None or not value >= minimum:
            out.append(f"{dim} {value:.2f} < {minimum:g}" if value is not None else f"{dim} missing < {minimum:g}")
    return out


class QualityStage:
    def __init__(self, cfg: QualityConfig):
        self.cfg = cfg
        self.scorer = load_quality_scorer(cfg.model)
        for dim in cfg.thresholds:
            if dim not in self.scorer.dimensions:
                raise ValueError(
                    f"quality.thresholds.{dim}: scorer {self.scorer.model_id!r} does not score {dim!r} "
                    f"(it scores {', '.join(self.scorer.dimensions)})"
                )

    def _score_rows(self, batch: Batch, rows: list[int]) -> dict[int, QualityScores | Exception]:
        """One scorer call per sample rate; if a call fails, score its rows one by one to isolate the bad one."""
        by_rate: dict[int, list[int]] = defaultdict(list)
        for i in rows:
            by_rate[int(batch["sample_rate"][i])].append(i)
        out: dict[int, QualityScores | Exception] = {}
        for rate, group in by_rate.items():
            try:
                out.update(zip(group, self.scorer.score([audio(batch, i) for i in group], rate)))
            except Exception:
                for i in group:
                    try:
                        out[i] = self.scorer.score([audio(batch, i)], rate)[0]
                    except Exception as exc:  # a bad row is a reject, never a crash
                        out[i] = exc
        return out

    def __call__(self, batch) -> Batch:
        batch = as_lists(batch)
        rows = []
        for i in live(batch):
            if not batch["pcm"][i]:
                reject(batch, i, STAGE, "invalid_audio", "empty audio")
            elif not batch["sample_json"][i]:
                reject(batch, i, STAGE, "missing_sample", "row reached quality scoring without a Sample record")
            else:
                rows.append(i)
        for i, result in self._score_rows(batch, rows).items():
            if isinstance(result, Exception):
                reject(batch, i, STAGE, "quality_failed", f"{type(result).__name__}: {result}")
                continue
            try:
                s = sample(batch, i)
                s.quality = result
                set_sample(batch, i, s)
            except Exception as exc:
                batch["sample_json"][i] = ""  # unreadable: reject() would fail parsing it again
                reject(batch, i, STAGE, "invalid_sample", f"{type(exc).__name__}: {exc}")
                continue
            failed = failed_thresholds(result, self.cfg.thresholds)
            if failed:
                reject(batch, i, STAGE, "quality_below_threshold", "; ".join(failed))
        return batch
