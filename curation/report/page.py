"""The report's HTML page: the run's tables and its plots by relative name (static: copy or serve the folder as is)."""

from __future__ import annotations

import html


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
    body = "\n".join(f'<tr><th>{html.escape(k)}</th><td class="n">{html.escape(v)}</td></tr>' for k, v in rows)
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
    figures = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, caption in plots
    )
    output = f"<p>Output: <code>{html.escape(str(s['output']))}</code></p>\n" if s.get("output") else ""
    return _PAGE.format(title="Curation report", output=output, tables="\n".join(tables), figures=figures)
