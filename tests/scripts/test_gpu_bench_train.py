"""scripts/gpu_bench_train.py --dry-run: the trainer's own step on a tiny Dual-AR on CPU, timed and reported."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_each_variant_and_says_what_the_loader_must_feed(tmp_path):
    out = tmp_path / "train.json"
    r = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_bench_train", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "FSDP2 on one rank" in r.stdout and "the loader must feed" in r.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    rows = result["rows"]
    assert [(row["seq_len"], row["activation_checkpointing"], row["lora"]) for row in rows] == [
        (256, True, False),
        (128, False, False),
        (128, False, True),
    ]
    for row in rows:
        assert row["result"] == "ok" and row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1
        assert row["tokens_per_step"] <= row["seq_len"] * row["accumulation"]  # whole samples, padding excluded
        assert row["samples_per_s"] == row["tokens_per_s"] / row["sample_tokens"]
        assert 5 < row["loss"] < 20  # random weights: about ln(vocab) + ln(codebook size)
