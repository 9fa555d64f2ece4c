"""Quality-threshold calibration: what a minimum on each quality dimension keeps of good audio and rejects of bad.

Labelled material is either bootstrapped (clean clips and degraded copies of them, labelled by
curation.evaluation.degrade: a clip is good when its `overall` label is at least `good_above`) or a user's table.
For each dimension the scorer fills, every threshold of a grid gets: the share of good clips kept, the share of bad
clips rejected, and the precision of what is kept. A threshold is recommended per dimension as the lowest one that
rejects at least `target_reject` of the bad clips (the lowest: it keeps the most good audio for that rejection), and
a rule over all dimensions together (as the quality stage applies them) as the one keeping the most good clips among
those rejecting at least `target_reject` of the bad (fewer minimums on a tie).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from curation.evaluation.degrade import Degraded, bootstrap


@dataclass(frozen=True)
class Labelled:
    name: str
    audio: np.ndarray
    good: bool
    label: float | None  # the overall label it was judged on, where there is one
    degradations: str  # what was done to it ('' for clean or user clips)


def bootstrap_labelled(
    clean: Mapping[str, np.ndarray],
    sample_rate: int,
    noises: Sequence[np.ndarray],
    per_clip: int = 4,
    max_kinds: int = 2,
    seed: int = 0,
    good_above: float = 3.5,
) -> list[Labelled]:
    """The bootstrap set of degrade.bootstrap, judged good or bad on its `overall` label."""

    def describe(d: Degraded) -> str:
        return " + ".join(
            f"{a.kind}({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in a.params.items())})"
            for a in d.applied
        )

    return [
        Labelled(name, d.audio, d.labels["overall"] >= good_above, round(d.labels["overall"], 3), describe(d))
        for name, d in bootstrap(clean, sample_rate, noises, per_clip=per_clip, max_kinds=max_kinds, seed=seed)
    ]


def threshold_grid(values: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Thresholds every `step` over the range of the scores (rounded to the step)."""
    lo, hi = np.floor(np.min(values) / step) * step, np.ceil(np.max(values) / step) * step
    return np.round(np.arange(lo, hi + step / 2, step), 6)


def sweep(scores: Mapping[str, np.ndarray], good: np.ndarray, step: float = 0.1) -> list[dict]:
    """One row per (dimension, threshold): good kept, bad rejected, precision of the kept, counts."""
    good = np.asarray(good, dtype=bool)
    rows = []
    for dim, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        for t in threshold_grid(values, step):
            kept = values >= t
            n_kept = int(kept.sum())
            rows.append(
                {
                    "dimension": dim,
                    "threshold": float(t),
                    "good_kept": float(kept[good].mean()) if good.any() else float("nan"),
                    "bad_rejected": float((~kept[~good]).mean()) if (~good).any() else float("nan"),
                    "precision": float((kept & good).sum() / n_kept) if n_kept else float("nan"),
                    "kept": n_kept,
                }
            )
    return rows


def recommend(rows: Sequence[dict], target_reject: float) -> dict[str, dict]:
    """Per dimension, the lowest threshold rejecting at least `target_reject` of the bad clips (None if none does)."""
    out: dict[str, dict] = {}
    for row in rows:
        dim = row["dimension"]
        if row["bad_rejected"] >= target_reject and dim not in out:
            out[dim] = row
    return out


def evaluate_rule(scores: Mapping[str, np.ndarray], good: np.ndarray, thresholds: Mapping[str, float]) -> dict:
    """A set of minimums applied together, as the quality stage applies them (a clip failing any is rejected)."""
    good = np.asarray(good, dtype=bool)
    kept = np.ones(len(good), dtype=bool)
    for dim, t in thresholds.items():
        kept &= np.asarray(scores[dim]) >= t
    return {
        "thresholds": dict(thresholds),
        "good_kept": float(kept[good].mean()) if good.any() else float("nan"),
        "bad_rejected": float((~kept[~good]).mean()) if (~good).any() else float("nan"),
        "precision": float((kept & good).sum() / kept.sum()) if kept.any() else float("nan"),
    }


def recommend_rule(scores: Mapping[str, np.ndarray], good: np.ndarray, target_reject: float) -> dict | None:
    """The set of minimums (any subset of the dimensions, each on its grid) keeping the most good clips among those
    rejecting at least `target_reject` of the bad; None when no rule does."""
    dims = list(scores)
    grids = [[None, *threshold_grid(np.asarray(scores[d]))] for d in dims]
    best = None
    for combo in itertools.product(*grids):
        rule = {d: float(t) for d, t in zip(dims, combo) if t is not None}
        if not rule:
            continue
        e = evaluate_rule(scores, good, rule)
        if e["bad_rejected"] >= target_reject:
            key = (e["good_kept"], -len(rule), e["bad_rejected"])
            if best is None or key > best[0]:
                best = (key, e)
    return best[1] if best else None


def markdown_table(rows: Sequence[dict], marks: Mapping[tuple[str, float], str] = {}) -> str:
    """The sweep as a Markdown table; `marks` flags rows ((dimension, threshold) -> note)."""
    lines = [
        "| dimension | threshold | good kept | bad rejected | precision of kept | kept | |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dimension']} | {r['threshold']:.2f} | {r['good_kept']:.1%} | {r['bad_rejected']:.1%} | "
            f"{r['precision']:.1%} | {r['kept']} | {marks.get((r['dimension'], r['threshold']), '')} |"
        )
    return "\n".join(lines) + "\n"


def plot_tradeoff(rows: Sequence[dict], current: Mapping[str, float], chosen: Mapping[str, dict]) -> bytes:
    """Per dimension: good kept and bad rejected against the threshold; dashed: the profile's minimum, dotted: the
    recommended one. PNG bytes without timestamps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dims = list(dict.fromkeys(r["dimension"] for r in rows))
    fig = Figure(figsize=(5.2 * max(len(dims), 1), 3.6), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    for k, dim in enumerate(dims):
        ax = fig.add_subplot(1, len(dims), k + 1)
        sel = [r for r in rows if r["dimension"] == dim]
        t = [r["threshold"] for r in sel]
        ax.plot(t, [r["good_kept"] for r in sel], color="#2a7ab9", label="good kept")
        ax.plot(t, [r["bad_rejected"] for r in sel], color="#d1495b", label="bad rejected")
        if dim in current:
            ax.axvline(current[dim], color="black", linestyle="--", linewidth=1.1, label=f"profile {current[dim]:g}")
        if dim in chosen:
            ax.axvline(chosen[dim]["threshold"], color="#555", linestyle=":", linewidth=1.4, label="recommended")
        ax.set_title(dim)
        ax.set_xlabel("minimum")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="center left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return buf.getvalue()
