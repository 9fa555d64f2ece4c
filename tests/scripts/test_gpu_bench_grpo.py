"""scripts/gpu_bench_grpo.py --dry-run: rollouts three ways (identical codes), the policy loss and the s2 rewards, on a
tiny Dual-AR on CPU, timed and reported."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_rollouts_three_ways_the_loss_and_the_rewards(tmp_path):
    out = tmp_path / "grpo.json"
    r = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_bench_grpo", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "batched / sequential" in r.stdout and "scoring (3 rewards in turn" in r.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    assert [(row["way"], row["rollouts"]) for row in result["rows"]] == [
        ("batched", 4),
        ("per_group", 4),
        ("sequential", 2),
    ]
    assert all(row["tokens_per_s"] > 0 for row in result["rows"])
    rate = {row["way"]: row["tokens_per_s"] for row in result["rows"]}
    assert result["rollout_tokens_per_s_batched_over_sequential"] == rate["batched"] / rate["sequential"]
    loss = result["loss"]
    assert loss["micro_batches"] == 2 and loss["reference_s"] > 0 and loss["policy_forward_backward_s"] > 0
    stages = {row["stage"].split()[0] for row in result["scoring"]["rows"]}
    assert len(stages) == 3 and result["scoring"]["step_s_all_rewards_in_turn"] > 0
