import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_every_stage_and_combines_them(tmp_path):
    out = tmp_path / "s2.json"
    r = subprocess.run(
        # the rewards' dry run has a test of its own (tests/scripts/test_gpu_bench_rewards.py)
        [
            sys.executable,
            "-m",
            "scripts.gpu_bench_s2",
            "--dry-run",
            "--stages",
            "separation,quality,transcription,vllm,codec",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    for label in (
        "separation",
        "quality",
        "transcription (transformers)",
        "end to end (one GPU)",
        "vllm: not measured",
    ):
        assert label in r.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    stages = [row["stage"] for row in result["rows"]]
    assert stages[:4] == ["separation", "quality", "transcription (transformers)", "transcription (transformers)"]
    assert set(stages[4:]) == {"codec encode"} and len(stages[4:]) == len(
        [r for r in result["codec"]["rows"] if r["op"] == "encode"]
    )
    assert [row["batch"] for row in result["rows"] if row["stage"].startswith("transcription")] == [1, 2]
    rates = [row["audio_hours_per_gpu_hour"] for row in result["rows"]]
    assert all(rate > 0 for rate in rates)
    # one GPU doing every stage in turn is slower than its slowest stage alone
    assert 0 < result["end_to_end"]["audio_hours_per_gpu_hour"] < min(rates[:2] + [max(rates[2:])])
