"""s2 calibrate-quality: DNSMOS on bootstrapped clean and degraded clips, and on a user's labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import soundfile as sf

from jobs.calibrate_quality import main
from jobs.cli import main as cli
from tests.conftest import DATA

CLEAN = [
    "pyroomacoustics__cmu_arctic_us_aew_a0001.wav",
    "pyroomacoustics__cmu_arctic_us_axb_a0004.wav",
    "leopard__test.wav",
]


def test_bootstrap_labels_give_a_trade_off_table_plot_and_recommendation(tmp_path):
    clean, noise = tmp_path / "clean", tmp_path / "noise"
    clean.mkdir()
    noise.mkdir()
    for name in CLEAN:
        shutil.copy(DATA / "speech" / name, clean / name)
    shutil.copy(DATA / "noise" / "dishes_20s.flac", noise)
    out = tmp_path / "cal"
    code = main(["--clean", str(clean), "--noise", str(noise), "--out", str(out), "--per-clip", "3", "--crop-s", "3"])
    assert code == 0
    record = json.loads((out / "calibration.json").read_text())
    clips = record["clips"]
    assert len(clips) == 3 * 4 and record["profile"] == "local" and record["model_id"].startswith("dnsmos")
    assert all(c["good"] == (c["label"] >= 3.5) for c in clips)
    assert all(c["good"] for c in clips if c["name"].endswith("__clean"))
    # the profile's rule is evaluated as the quality stage applies it
    scores = {c["name"]: c for c in clips}
    kept = [n for n, c in scores.items() if c["overall"] >= 2.8 and c["recording_quality"] >= 3.2]
    good = [n for n, c in scores.items() if c["good"]]
    assert record["profile_rule"]["good_kept"] == sum(n in kept for n in good) / len(good)
    table = (out / "calibration.md").read_text()
    rows = [
        line.split("|") for line in table.splitlines() if line.startswith("| overall ") or line.startswith("| snr ")
    ]
    assert len(rows) > 5 and {"overall", "snr"} <= {r[1].strip() for r in rows}
    kept_share = [float(r[3].strip(" %")) for r in rows if r[1].strip() == "overall"]
    assert kept_share == sorted(kept_share, reverse=True)  # a higher minimum never keeps more
    for dim, t in record["recommended"].items():
        line = next(r for r in rows if r[1].strip() == dim and float(r[2]) == t) if dim in ("overall", "snr") else None
        assert line is None or float(line[4].strip(" %")) >= 80.0
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "calibration.csv").read_text().startswith("dimension,threshold,good_kept,bad_rejected")


def test_a_users_labels_and_bad_input(tmp_path, capsys):
    x, sr = sf.read(DATA / "speech" / CLEAN[0], dtype="float32")
    noisy = x + 0.3 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", np.clip(noisy, -1, 1), sr)
    shutil.copy(DATA / "speech" / CLEAN[0], tmp_path / "clean.wav")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"uri": "clean.wav", "good": 1}\n{"uri": "noisy.wav", "good": 0}\n')
    assert cli(["calibrate-quality", "--labels", str(labels), "--out", str(tmp_path / "cal")]) == 0  # the s2 command
    clips = json.loads((tmp_path / "cal" / "calibration.json").read_text())["clips"]
    assert [c["good"] for c in clips] == [True, False] and clips[0]["overall"] > clips[1]["overall"]
    labels.write_text('{"uri": "clean.wav", "quality": 1}\n')
    assert main(["--labels", str(labels), "--out", str(tmp_path / "cal2")]) == 2
    assert "needs a 'uri' column and a 'good' or 'overall' column" in capsys.readouterr().err
    assert main(["--labels", str(labels), "--out", str(tmp_path / "x"), "--set", "quality.model.name=nope"]) == 2
    assert "quality.model.name" in capsys.readouterr().err
