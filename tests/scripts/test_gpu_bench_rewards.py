import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_every_s2_reward_through_its_wrapper(tmp_path):
    out = tmp_path / "rewards.json"
    r = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_bench_rewards", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    stages = [row["stage"].split(" ")[0] for row in result["rows"]]
    assert stages == ["R_STT", "R_STT", "R_Pref", "R_Pref", "R_SIM", "R_SIM"]
    assert [row["batch"] for row in result["rows"]] == [1, 2] * 3
    rates = [row["audio_hours_per_gpu_hour"] for row in result["rows"]]
    assert all(rate > 0 for rate in rates)
    # one GPU scoring all three rewards in turn is slower than the slowest of them alone
    best = [max(rates[k : k + 2]) for k in (0, 2, 4)]
    assert 0 < result["total"]["audio_hours_per_gpu_hour"] < min(best)
    assert "total (one GPU, all three in turn)" in r.stdout
