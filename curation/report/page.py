"""The report's HTML page: the run's tables and its plots by relative name (static: copy or serve the folder as is)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curation.report.examples import Example


def hours_text(h: float | None) -> str:
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
table.listen {{ display: table; font-size: 0.85rem; }}
table.listen td {{ vertical-align: top; }}
table.listen td.text {{ max-width: 640px; }}
tr.missing td {{ background: #fde8e8; }}
audio {{ height: 2rem; width: 260px; }}
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
{listen}
<script>
// Flag plots that failed to load (a partial copy of the report); data-images reads 'loaded/total'.
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images), ok = 0;
  imgs.forEach(function (img) {{
    if (img.complete && img.naturalWidth > 0) ok++; else img.parentNode.classList.add("missing");
  }});
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
}});
// Players whose clip cannot be decoded are flagged; data-audio reads 'playable/total' once every clip has answered.
(function () {{
  var players = Array.prototype.slice.call(document.querySelectorAll("audio")), ok = 0, done = 0;
  function settle(p, good) {{
    if (p.dataset.settled) return;
    p.dataset.settled = "1";
    done++;
    if (good) ok++; else p.closest("tr").classList.add("missing");
    if (done === players.length) document.body.setAttribute("data-audio", ok + "/" + players.length);
  }}
  if (!players.length) document.body.setAttribute("data-audio", "0/0");
  players.forEach(function (p) {{
    p.addEventListener("loadedmetadata", function () {{ settle(p, p.duration > 0); }});
    p.addEventListener("error", function () {{ settle(p, false); }});
    if (p.readyState >= 1) settle(p, p.duration > 0);
    p.load();
  }});
}})();
</script>
</body>
</html>
"""


def _table(caption: str, rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f'<tr><th>{html.escape(k)}</th><td class="n">{html.escape(v)}</td></tr>' for k, v in rows)
    return f"<table>\n<caption>{html.escape(caption)}</caption>\n{body}\n</table>"


def _listen(examples: Sequence[Example]) -> str:
    """The examples as tables of players, one per group, each row with the clip's transcript, scores and reason."""
    if not examples:
        return ""
    parts = [
        "<h2>Listen</h2>",
        "<p>A few kept segments per quality band and a few rejected ones per reason (the same ones on every run of the "
        "same data). Kept clips are the audio written to the shards; rejected ones are the span of their input.</p>",
    ]
    group = None
    for ex in examples:
        if ex.group != group:
            if group is not None:
                parts.append("</table>")
            group = ex.group
            parts.append(f'<table class="listen">\n<caption>{html.escape(group)}</caption>')
        player = (
            f'<audio controls preload="metadata" src="{html.escape(ex.audio)}"></audio>'
            if ex.audio
            else "audio unavailable"
        )
        scores = ", ".join(f"{k} {v:.2f}" for k, v in ex.scores.items())
        span = f"{ex.start_s:.2f}-{ex.end_s:.2f} s" if ex.start_s is not None and ex.end_s is not None else ""
        about = " | ".join(
            p
            for p in (
                f"<b>{html.escape(ex.reason)}</b>: {html.escape(ex.detail or '')}" if ex.reason else "",
                html.escape(scores),
                f"language {html.escape(ex.language)}" if ex.language else "",
            )
            if p
        )
        parts.append(
            f"<tr><td>{player}</td><td><code>{html.escape(ex.key)}</code><br>{html.escape(ex.source_uri)} {span}</td>"
            f'<td class="text">{html.escape(ex.text or "(no transcript)")}<br>{about}</td></tr>'
        )
    parts.append("</table>")
    return "\n".join(parts)


def render_page(
    summary: dict,
    thresholds: dict[str, float],
    plots: list[tuple[str, str]],
    examples: Sequence[Example] = (),
    tables_extra: Sequence[tuple[str, list[tuple[str, str]]]] = (),
) -> str:
    """The HTML for `plots` ((file name, caption) pairs, relative to the page), `tables_extra` ((caption, rows) tables
    beside the run's own) and the `examples` to listen to (their clips relative to the page)."""
    s = summary
    overview = [
        ("inputs", _num(s.get("inputs"))),
        ("inputs with samples", _num(s.get("inputs_with_samples"))),
        ("inputs fully rejected", _num(s.get("inputs_rejected"))),
        ("segments kept", _num(s.get("segments_kept"))),
        ("segments rejected", _num(s.get("segments_rejected"))),
        ("shards", _num(s.get("shards"))),
        ("hours in", hours_text(s.get("hours_in"))),
        ("hours out", hours_text(s.get("hours_out"))),
        ("wall time", _num(s.get("wall_s"), "{:.1f} s")),
        ("audio-hours per hour", _num(s.get("audio_hours_per_hour"))),
    ]
    tables = [_table("Run", overview)]
    if thresholds:
        tables.append(_table("Quality minimums", [(k, f"{v:g}") for k, v in thresholds.items()]))
    if s.get("rejects_by_reason"):
        tables.append(_table("Rejects by stage/reason", [(k, str(v)) for k, v in s["rejects_by_reason"].items()]))
    extra = [_table(caption, rows) for caption, rows in tables_extra if rows]
    figures = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, caption in plots
    )
    output = f"<p>Output: <code>{html.escape(str(s['output']))}</code></p>\n" if s.get("output") else ""
    return _PAGE.format(
        title="Curation report",
        output=output,
        tables="\n".join(tables + extra),
        figures=figures,
        listen=_listen(examples),
    )
