import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_bench_quality", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for mode in ("fbank_only", "forward_only", "end_to_end"):
        assert mode in r.stdout
    assert "end_to_end / forward_only" in r.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu" and result["params_m"] < 1
    assert all(row["audio_hours_per_gpu_hour"] > 0 for row in result["rows"].values())
    assert result["end_to_end_over_forward_only"] > 0
