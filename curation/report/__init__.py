"""The per-run dataset report: report/index.html, its PNG plots and report/summary.json (curation.report.write).

Built from what finalisation already holds (manifest rows, reject dicts, the run summary), so it costs no audio
reads. Written through the storage layer: a local directory and an s3:// prefix alike.
"""
