"""The report's plots (PNG, byte-deterministic: no timestamps in the metadata)."""

from __future__ import annotations

import io
import math
from collections import Counter

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from curation.report.page import hours_text
from curation.report.stats import QUALITY_GROUPS, RunStats
from schemas.transcript import EVENT_TAGS, STYLE_TAGS

DPI = 90
KEPT, REJECTED, OTHER = "#2a7ab9", "#d1495b", "#8d8d8d"
MAX_BARS = 30  # longer category lists keep their most frequent entries; the title says how many were left out


# --- plots -------------------------------------------------------------------------------------------


def _figure(height: float = 3.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def empty_plot(title: str) -> bytes:
    """An empty run still gets every plot, saying so."""
    fig, ax = _figure()
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=16, color=OTHER, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _bins(values: list[float], extra: tuple[float, ...] = ()) -> np.ndarray:
    span = [*values, *extra]
    return np.histogram_bin_edges(span, bins=min(40, max(8, int(math.sqrt(len(values))) * 2)))


def _kept_and_dropped(
    title: str, unit: str, kept: list[float], dropped: list[float], dropped_label: str, minimum: float | None
) -> Figure | None:
    """Kept segments and segments dropped by one bar, on shared bins; dashed line: the bar. None: nothing to draw."""
    if not kept and not dropped:
        return None
    fig, ax = _figure()
    bins = _bins(kept + dropped, (minimum,) if minimum is not None else ())
    if kept:
        ax.hist(kept, bins=bins, color=KEPT, alpha=0.75, label=f"kept ({len(kept)})")
    if dropped:
        ax.hist(
            dropped,
            bins=bins,
            color=REJECTED,
            histtype="step",
            linewidth=1.6,
            label=f"{dropped_label} ({len(dropped)})",
        )
    if minimum is not None:
        ax.axvline(minimum, color="black", linestyle="--", linewidth=1.2, label=f"minimum {minimum:g} {unit}")
    median = f", median kept {np.median(kept):.1f} {unit}" if kept else ""
    ax.set_title(f"{title}: {len(kept)} kept{median}")
    ax.set_xlabel(unit)
    ax.set_ylabel("segments")
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_durations(stats: RunStats, min_s: float | None = None) -> bytes:
    """Kept segments, and segments dropped for length; dashed line: the configured minimum."""
    title = "Segment duration"
    fig = _kept_and_dropped(title, "s", list(stats.durations), list(stats.too_short), "dropped for length", min_s)
    return empty_plot(title) if fig is None else _png(fig)


def plot_bandwidth(stats: RunStats, min_hz: float | None = None) -> bytes:
    """Measured band of kept segments (kHz), and of segments rejected as narrow band; dashed line: the minimum."""
    title = "Bandwidth"
    kept, narrow = [b / 1000 for b in stats.bandwidths], [b / 1000 for b in stats.narrow_band]
    minimum = min_hz / 1000 if min_hz is not None else None
    fig = _kept_and_dropped(title, "kHz", kept, narrow, "narrow band", minimum)
    return empty_plot(title) if fig is None else _png(fig)


def plot_quality(dim: str, stats: RunStats, threshold: float | None) -> bytes:
    """Kept vs rejected on shared bins; segments rejected at a later stage (after passing quality) are
    drawn apart, so the threshold line separates 'kept' from 'rejected at quality'."""
    groups = stats.quality.get(dim, {})
    style = {"kept": (KEPT, "stepfilled"), "rejected at quality": (REJECTED, "step"), "rejected later": (OTHER, "step")}
    series = [(label, list(groups.get(label, ())), *style[label]) for label in QUALITY_GROUPS]
    title = f"Quality: {dim}"
    values = [v for _, vs, _, _ in series for v in vs]
    if not values:
        return empty_plot(title)
    fig, ax = _figure()
    bins = _bins(values, (threshold,) if threshold is not None else ())
    for label, vs, color, kind in series:
        if vs:
            ax.hist(
                vs,
                bins=bins,
                color=color,
                histtype=kind,
                alpha=0.75 if kind == "stepfilled" else 1.0,
                linewidth=1.6,
                label=f"{label} ({len(vs)})",
            )
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"minimum {threshold:g}")
    ax.set_title(title)
    ax.set_xlabel(dim)
    ax.set_ylabel("segments")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _barh(
    title: str, counts: list[tuple[str, int]], colors: list[str], xlabel: str, legend: dict[str, str] | None = None
) -> bytes:
    if not counts:
        return empty_plot(title)
    shown = counts[:MAX_BARS]
    fig, ax = _figure(max(2.4, 0.9 + 0.26 * len(shown)))
    y = np.arange(len(shown))[::-1]  # first entry on top
    ax.barh(y, [n for _, n in shown], color=colors[: len(shown)])
    ax.set_yticks(y, [name for name, _ in shown], fontsize=8)
    for yi, (_, n) in zip(y, shown):
        ax.text(n, yi, f" {n}", va="center", fontsize=8)
    ax.margins(x=0.12)
    more = len(counts) - len(shown)
    ax.set_title(title + (f" (top {len(shown)}, {more} more)" if more else ""))
    ax.set_xlabel(xlabel)
    if legend:
        ax.legend(handles=[Patch(color=c, label=name) for name, c in legend.items()], fontsize=8, loc="lower right")
    return _png(fig)


def plot_rejects(stats: RunStats) -> bytes:
    """Counts by stage and reason, grouped by stage (most rejecting stage first)."""
    by = stats.rejects
    per_stage = Counter()
    for (stage, _), n in by.items():
        per_stage[stage] += n
    order = sorted(by.items(), key=lambda kv: (-per_stage[kv[0][0]], kv[0][0], -kv[1], kv[0][1]))
    stages = sorted(per_stage, key=lambda s: (-per_stage[s], s))
    palette = {s: f"C{i % 10}" for i, s in enumerate(stages)}
    counts = [(f"{stage} / {reason}", n) for (stage, reason), n in order]
    colors = [palette[stage] for (stage, _), _ in order]
    return _barh(f"Rejects by stage and reason: {sum(by.values())}", counts, colors, "rejects", palette)


def plot_tags(stats: RunStats) -> bytes:
    counts = stats.tags
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kinds = {"event": KEPT, "style": "#edae49", "unknown": OTHER}
    colors = [
        kinds["event"] if t in EVENT_TAGS else kinds["style"] if t in STYLE_TAGS else kinds["unknown"]
        for t, _ in ordered
    ]
    present = {kind: c for kind, c in kinds.items() if c in colors}
    return _barh(f"Inline tags in kept transcripts: {sum(counts.values())}", ordered, colors, "occurrences", present)


def plot_speakers(stats: RunStats) -> bytes:
    """Speakers per kept sample and, where source-level diarization ran, per source: side by side."""
    n, per_source, untranscribed = stats.speakers, stats.source_speakers, stats.untranscribed
    title = "Speakers per sample (kept)" + (f", {untranscribed} without transcript" if untranscribed else "")
    if not n and not per_source:
        return empty_plot(title)
    fig, ax = _figure()
    xs = np.arange(1, max([*n, *per_source]) + 1)
    width = 0.4 if per_source else 0.8
    ax.bar(xs - (width / 2 if per_source else 0), [n[x] for x in xs], width=width, color=KEPT, label="samples")
    if per_source:
        ax.bar(xs + width / 2, [per_source[x] for x in xs], width=width, color="#edae49", label="sources")
        ax.legend(fontsize=8, loc="best")
        title += " and per source"
    ax.set_xticks(xs)
    ax.set_title(title)
    ax.set_xlabel("speakers")
    ax.set_ylabel("samples" if not per_source else "samples / sources")
    return _png(fig)


def plot_hours(summary: dict) -> bytes:
    hours = [summary.get("hours_in") or 0.0, summary.get("hours_out") or 0.0]
    if not any(hours):
        return empty_plot("Audio hours in and out")
    fig, ax = _figure(2.6)
    bars = ax.barh([1, 0], hours, color=[OTHER, KEPT])
    ax.set_yticks([1, 0], ["in", "out (kept)"])
    ax.bar_label(bars, [hours_text(h) for h in hours], padding=3, fontsize=9)
    ax.margins(x=0.2)
    ratio = f": {hours[1] / hours[0]:.0%} kept" if hours[0] > 0 else ""
    ax.set_title(f"Audio hours in and out{ratio}")
    ax.set_xlabel("hours")
    return _png(fig)
