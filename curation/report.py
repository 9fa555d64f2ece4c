"""The per-run dataset report: report/index.html, its PNG plots and report/summary.json.

Built from what finalisation already holds (manifest rows, reject dicts, the run summary), so it costs
no audio reads. Written through curation.storage: a local directory and an s3:// prefix alike. The page
is static and refers to its plots by relative name, so the report folder can be copied or served as is.
Plots are byte-deterministic: the same run gives the same files (no timestamps in the PNG metadata).
"""

from __future__ import annotations

import html
import io
import json
import math
from collections import Counter

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from curation import storage
from schemas.quality import QUALITY_DIMENSIONS
from schemas.sample import Sample
from schemas.transcript import EVENT_TAGS, STYLE_TAGS, tags_in

REPORT_DIR = "report"
DPI = 90
KEPT, REJECTED, OTHER = "#2a7ab9", "#d1495b", "#8d8d8d"
MAX_BARS = 30  # longer category lists keep their most frequent entries; the title says how many were left out


def _parse(rows: list[dict]) -> list[Sample]:
    """The Sample of each row that has one (input-level rejects have none)."""
    return [Sample.model_validate_json(r["sample_json"]) for r in rows if r.get("sample_json")]


def transcript_tags(s: Sample) -> list[str]:
    """Inline tags ([laugh], [whispers], ...) of a sample's transcript, in order, canonical names."""
    return [tag for turn in s.transcript.turns for tag in tags_in(turn.text)] if s.transcript else []


# --- plots -------------------------------------------------------------------------------------------


def _figure(height: float = 3.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _empty(title: str) -> bytes:
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


def plot_durations(kept: list[Sample]) -> bytes:
    d = [s.audio.duration_s for s in kept]
    title = "Segment duration (kept)"
    if not d:
        return _empty(title)
    fig, ax = _figure()
    ax.hist(d, bins=_bins(d), color=KEPT)
    ax.set_title(f"{title}: {len(d)} segments, median {np.median(d):.1f} s")
    ax.set_xlabel("seconds")
    ax.set_ylabel("segments")
    return _png(fig)


def plot_quality(dim: str, kept: list[Sample], rejected: list[tuple[str, Sample]], threshold: float | None) -> bytes:
    """Kept vs rejected on shared bins; segments rejected at a later stage (after passing quality) are
    drawn apart, so the threshold line separates 'kept' from 'rejected at quality'."""

    def scores(samples):
        return [v for s in samples if s.quality and (v := getattr(s.quality, dim)) is not None and math.isfinite(v)]

    series = [
        ("kept", scores(kept), KEPT, "stepfilled"),
        ("rejected at quality", scores(s for stage, s in rejected if stage == "quality"), REJECTED, "step"),
        ("rejected later", scores(s for stage, s in rejected if stage != "quality"), OTHER, "step"),
    ]
    title = f"Quality: {dim}"
    values = [v for _, vs, _, _ in series for v in vs]
    if not values:
        return _empty(title)
    fig, ax = _figure()
    bins = _bins(values, (threshold,) if threshold is not None else ())
    for label, vs, color, kind in series:
        if vs:
            ax.hist(vs, bins=bins, color=color, histtype=kind, alpha=0.75 if kind == "stepfilled" else 1.0, linewidth=1.6, label=f"{label} ({len(vs)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"minimum {threshold:g}")
    ax.set_title(title)
    ax.set_xlabel(dim)
    ax.set_ylabel("segments")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _barh(title: str, counts: list[tuple[str, int]], colors: list[str], xlabel: str, legend: dict[str, str] | None = None) -> bytes:
    if not counts:
        return _empty(title)
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


def plot_rejects(rejects: list[dict]) -> bytes:
    """Counts by stage and reason, grouped by stage (most rejecting stage first)."""
    by = Counter((r["stage"], r["reason"]) for r in rejects)
    per_stage = Counter(r["stage"] for r in rejects)
    order = sorted(by.items(), key=lambda kv: (-per_stage[kv[0][0]], kv[0][0], -kv[1], kv[0][1]))
    stages = sorted(per_stage, key=lambda s: (-per_stage[s], s))
    palette = {s: f"C{i % 10}" for i, s in enumerate(stages)}
    counts = [(f"{stage} / {reason}", n) for (stage, reason), n in order]
    colors = [palette[stage] for (stage, _), _ in order]
    return _barh(f"Rejects by stage and reason: {len(rejects)}", counts, colors, "rejects", palette)


def plot_tags(kept: list[Sample]) -> bytes:
    counts = Counter(t for s in kept for t in transcript_tags(s))
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kinds = {"event": KEPT, "style": "#edae49", "unknown": OTHER}
    colors = [kinds["event"] if t in EVENT_TAGS else kinds["style"] if t in STYLE_TAGS else kinds["unknown"] for t, _ in ordered]
    present = {kind: c for kind, c in kinds.items() if c in colors}
    return _barh(f"Inline tags in kept transcripts: {sum(counts.values())}", ordered, colors, "occurrences", present)


def plot_speakers(kept: list[Sample]) -> bytes:
    n = Counter(len(s.transcript.speakers()) for s in kept if s.transcript)
    untranscribed = sum(1 for s in kept if not s.transcript)
    title = "Speakers per sample (kept)" + (f", {untranscribed} without transcript" if untranscribed else "")
    if not n:
        return _empty(title)
    fig, ax = _figure()
    xs = np.arange(1, max(n) + 1)
    ax.bar(xs, [n[x] for x in xs], color=KEPT)
    ax.set_xticks(xs)
    ax.set_title(title)
    ax.set_xlabel("speakers")
    ax.set_ylabel("samples")
    return _png(fig)


def plot_hours(summary: dict) -> bytes:
    hours = [summary.get("hours_in") or 0.0, summary.get("hours_out") or 0.0]
    if not any(hours):
        return _empty("Audio hours in and out")
    fig, ax = _figure(2.6)
    bars = ax.barh([1, 0], hours, color=[OTHER, KEPT])
    ax.set_yticks([1, 0], ["in", "out (kept)"])
    ax.bar_label(bars, [_hours(h) for h in hours], padding=3, fontsize=9)
    ax.margins(x=0.2)
    ratio = f": {hours[1] / hours[0]:.0%} kept" if hours[0] > 0 else ""
    ax.set_title(f"Audio hours in and out{ratio}")
    ax.set_xlabel("hours")
    return _png(fig)


# --- page --------------------------------------------------------------------------------------------


def _hours(h: float | None) -> str:
    if h is None:
        return "–"
    return f"{h:.2f} h" if h >= 1 else f"{h * 60:.1f} min"


def _num(v, fmt: str = "{}") -> str:
    return "–" if v is None else fmt.format(v)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; margin: 0 1.5rem 1rem 0; display: inline-table; vertical-align: top; }}
th, td {{ text-align: left; padding: 0.2rem 0.8rem; border-bottom: 1px solid #ddd; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }}
figure {{ margin: 0; border: 1px solid #e3e3e3; padding: 0.4rem; }}
figure.missing {{ background: #fde8e8; }}
figure.missing::before {{ content: "plot missing"; color: #b00; font-weight: bold; }}
figcaption {{ font-size: 0.85rem; color: #555; max-width: 576px; }}
</style>
</head>
<body>
<h1>{title}</h1>
{output}<h2>Summary</h2>
{tables}
<h2>Plots</h2>
<div class="plots">
{figures}
</div>
<script>
// Flag plots that failed to load (a partial copy of the report); data-images reads 'loaded/total'.
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images), ok = 0;
  imgs.forEach(function (img) {{
    if (img.complete && img.naturalWidth > 0) ok++; else img.parentNode.classList.add("missing");
  }});
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
}});
</script>
</body>
</html>
"""


def _table(caption: str, rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<tr><th>{html.escape(k)}</th><td class=\"n\">{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>\n<caption>{html.escape(caption)}</caption>\n{body}\n</table>"


def render_page(summary: dict, thresholds: dict[str, float], plots: list[tuple[str, str]]) -> str:
    """The HTML for `plots` ((file name, caption) pairs, relative to the page)."""
    s = summary
    overview = [
        ("inputs", _num(s.get("inputs"))),
        ("inputs with samples", _num(s.get("inputs_with_samples"))),
        ("inputs fully rejected", _num(s.get("inputs_rejected"))),
        ("segments kept", _num(s.get("segments_kept"))),
        ("segments rejected", _num(s.get("segments_rejected"))),
        ("shards", _num(s.get("shards"))),
        ("hours in", _hours(s.get("hours_in"))),
        ("hours out", _hours(s.get("hours_out"))),
        ("wall time", _num(s.get("wall_s"), "{:.1f} s")),
        ("audio-hours per hour", _num(s.get("audio_hours_per_hour"))),
    ]
    tables = [_table("Run", overview)]
    if thresholds:
        tables.append(_table("Quality minimums", [(k, f"{v:g}") for k, v in thresholds.items()]))
    if s.get("rejects_by_reason"):
        tables.append(_table("Rejects by stage/reason", [(k, str(v)) for k, v in s["rejects_by_reason"].items()]))
    figures = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, caption in plots
    )
    output = f"<p>Output: <code>{html.escape(str(s['output']))}</code></p>\n" if s.get("output") else ""
    return _PAGE.format(title="Curation report", output=output, tables="\n".join(tables), figures=figures)


def write_report(output: str, samples: list[dict], rejects: list[dict], summary: dict, thresholds: dict[str, float]) -> str:
    """Write report/ under `output` (a directory or s3:// prefix) and return the URI of its index.html.

    `samples` are manifest rows (curation.shards.manifest_row), `rejects` reject dicts with the Sample so
    far in 'sample_json' (or None), `summary` the run totals (curation.shards.finalize plus wall_s, ...),
    `thresholds` the quality minimums per dimension.
    """
    kept = _parse(samples)
    rejected = [(r["stage"], Sample.model_validate_json(r["sample_json"])) for r in rejects if r.get("sample_json")]
    scored = {d for s in [*kept, *(s for _, s in rejected)] if s.quality for d in s.quality.dimensions()}
    dims = [d for d in QUALITY_DIMENSIONS if d in scored or d in thresholds]

    plots: list[tuple[str, str, bytes]] = [
        ("hours.png", "Hours of input audio vs hours of kept segments written to shards.", plot_hours(summary)),
        ("durations.png", "Durations of the kept segments.", plot_durations(kept)),
        *(
            (f"quality_{d}.png", f"Quality '{d}' of kept segments, of segments rejected by the quality filter, and of segments that passed it but were rejected at a later stage; dashed line: the configured minimum.", plot_quality(d, kept, rejected, thresholds.get(d)))
            for d in dims
        ),
        ("rejects.png", "Rejected inputs and segments by stage and reason code (details in rejects.parquet).", plot_rejects(rejects)),
        ("tags.png", "Inline tags in kept transcripts: vocal events, delivery styles, and tags outside the registry.", plot_tags(kept)),
        ("speakers.png", "Distinct speakers in each kept sample's transcript.", plot_speakers(kept)),
    ]
    if not dims:
        plots.insert(2, ("quality.png", "Quality scores (none were recorded in this run).", _empty("Quality scores")))

    for name, _, data in plots:
        storage.write_bytes(storage.join(output, REPORT_DIR, name), data)
    listing = [{"file": name, "caption": caption} for name, caption, _ in plots]
    record = {**summary, "quality_thresholds": dict(thresholds), "plots": listing}
    storage.write_text(storage.join(output, REPORT_DIR, "summary.json"), json.dumps(record, indent=1, default=str))
    page = storage.join(output, REPORT_DIR, "index.html")
    storage.write_text(page, render_page(summary, thresholds, [(name, caption) for name, caption, _ in plots]))
    return page
