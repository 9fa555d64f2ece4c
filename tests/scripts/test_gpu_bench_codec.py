import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_encode_decode_and_a_training_step(tmp_path):
    out = tmp_path / "codec.json"
    r = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_bench_codec", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "best encode" in r.stdout and "target >= 2000x" in r.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu" and result["params_m"] < 1
    assert [(row["op"], row["batch"]) for row in result["rows"]] == [
        ("encode", 1),
        ("decode", 1),
        ("encode", 2),
        ("decode", 2),
    ]
    for row in result["rows"]:
        assert row["x_real_time"] > 0 and row["tflop_per_batch"] > 0 and 0 < row["mfu"] < 1
    encode = [row for row in result["rows"] if row["op"] == "encode"]
    assert encode[1]["tflop_per_batch"] > 1.9 * encode[0]["tflop_per_batch"]  # FLOPs counted for the whole batch
    assert result["target"]["encode_x_real_time"] == 2000
    assert "training step" in r.stdout
    assert [row["batch"] for row in result["train_rows"]] == [1, 2]
    for row in result["train_rows"]:
        assert row["op"] == "train" and row["steps_per_s"] > 0 and row["x_real_time"] > 0
        assert 0 < row["generator_params_m"] < 1 and 0 < row["discriminator_params_m"] < 1
