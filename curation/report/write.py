"""Writing the report. Its own module, so that the stage workers, which use curation.report.stats, do not import
matplotlib (about 28 MB per process)."""

from __future__ import annotations

import json

import storage
from curation.report.examples import write_examples
from curation.report.page import render_page
from curation.report.plots import (
    empty_plot,
    plot_bandwidth,
    plot_durations,
    plot_hours,
    plot_quality,
    plot_rejects,
    plot_speakers,
    plot_tags,
)
from curation.report.stats import RunStats

REPORT_DIR = "report"


def write_report(
    output: str,
    stats: RunStats,
    summary: dict,
    thresholds: dict[str, float],
    min_segment_s: float | None = None,
    min_bandwidth_hz: float | None = None,
) -> str:
    """Write report/ under `output` (a directory or s3:// prefix) and return the URI of its index.html.

    `stats` are the run's accumulated numbers (curation.report.stats, filled by curation.io.shards.finalize),
    `summary` the run totals (finalize's plus wall_s, ...), `thresholds` the quality minimums per dimension,
    `min_segment_s` the shortest segment kept (segmentation.min_s), `min_bandwidth_hz` the narrowest band kept
    (quality.min_bandwidth_hz). The examples `stats` picked are copied into
    report/audio/ (kept ones from their shards under `output`) and played on the page.
    """
    dims = stats.dimensions(thresholds)

    plots: list[tuple[str, str, bytes]] = [
        ("hours.png", "Hours of input audio vs hours of kept segments written to shards.", plot_hours(summary)),
        (
            "durations.png",
            "Durations of the kept segments, and of the segments dropped for length (shorter than segmentation.min_s "
            "after merging; dashed line).",
            plot_durations(stats, min_segment_s),
        ),
        (
            "bandwidth.png",
            "The band each kept segment holds, measured from its spectrum (audio.bandwidth_hz: a call resampled to "
            "44.1 kHz reads ~4 kHz), and that of the segments rejected as narrow band (quality.min_bandwidth_hz; "
            "dashed line).",
            plot_bandwidth(stats, min_bandwidth_hz),
        ),
        *(
            (
                f"quality_{d}.png",
                f"Quality '{d}' of kept segments, of segments rejected by the quality filter, and of segments that passed it but were rejected at a later stage; dashed line: the configured minimum.",
                plot_quality(d, stats, thresholds.get(d)),
            )
            for d in dims
        ),
        (
            "rejects.png",
            "Rejected inputs and segments by stage and reason code (details in rejects.parquet).",
            plot_rejects(stats),
        ),
        (
            "tags.png",
            "Inline tags in kept transcripts: vocal events, delivery styles, and tags outside the registry.",
            plot_tags(stats),
        ),
        (
            "speakers.png",
            "Distinct speakers in each kept sample's transcript, and in each source (source-level diarization).",
            plot_speakers(stats),
        ),
    ]
    if not dims:
        plots.insert(
            2, ("quality.png", "Quality scores (none were recorded in this run).", empty_plot("Quality scores"))
        )

    for name, _, data in plots:
        storage.write_bytes(storage.join(output, REPORT_DIR, name), data)
    examples = write_examples(output, REPORT_DIR, stats.examples.examples())
    short = list(stats.too_short)
    length = [
        ("segments dropped (shorter than min)", str(len(short))),
        ("their audio", f"{sum(short):.1f} s"),
        ("inputs too short", str(stats.inputs_too_short)),
    ]
    if min_segment_s is not None:
        length.insert(0, ("minimum segment", f"{min_segment_s:g} s"))
    languages = [(f"{lang} ({how})", str(n)) for (lang, how), n in sorted(stats.languages.items())]
    listing = [{"file": name, "caption": caption} for name, caption, _ in plots]
    record = {
        **summary,
        "quality_thresholds": dict(thresholds),
        "min_segment_s": min_segment_s,
        "dropped_for_length": {
            "segments": len(short),
            "seconds": round(sum(short), 2),
            "inputs": stats.inputs_too_short,
        },
        "languages": {f"{lang} ({how})": n for (lang, how), n in sorted(stats.languages.items())},
        "speakers_per_source": {str(k): v for k, v in sorted(stats.source_speakers.items())},
        "plots": listing,
        "examples": [{"group": e.group, "key": e.key, "audio": e.audio} for e in examples],
    }
    storage.write_text(storage.join(output, REPORT_DIR, "summary.json"), json.dumps(record, indent=1, default=str))
    page = storage.join(output, REPORT_DIR, "index.html")
    html = render_page(
        summary,
        thresholds,
        [(name, caption) for name, caption, _ in plots],
        examples,
        [("Dropped for length", length), ("Kept samples by language (how decided)", languages)],
    )
    storage.write_text(page, html)
    return page
