import json
import subprocess
import sys

from jobs.cli import main


def test_schema_sample_prints_the_json_schema(capsys):
    assert main(["schema", "sample"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Sample" and {"key", "source", "audio", "schema_version"} <= set(schema["properties"])


def test_bad_configuration_fails_fast_naming_the_field(capsys, tmp_path):
    code = main(["curate", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--set", "segmentation.min_s=99"])
    assert code == 2 and "min_s" in capsys.readouterr().err


def test_unknown_profile_is_named(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "jobs.curate", "--input", str(tmp_path), "--output", str(tmp_path), "--profile", "nope"],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "unknown profile 'nope'" in r.stderr and "local" in r.stderr


def test_missing_weights_fail_at_start_naming_the_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    code = main(["curate", "--profile", "s2", "--input", "tests/data/speech", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("cannot start:")
        and "pretrained 'htdemucs'" in err
        and "'adefossez/HTDemucs' is not available" in err
        and "--set separation.model.checkpoint=" in err
    )
    code = main(
        [
            "curate",
            "--profile",
            "s2",
            "--input",
            "tests/data/speech",
            "--output",
            str(tmp_path / "o"),
            "--set",
            "separation.enabled=false",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "head checkpoint 'quality_head.pt' not found" in err and "quality.model.options.head" in err


def test_a_missing_input_is_one_clear_line(capsys, tmp_path):
    assert main(["curate", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
