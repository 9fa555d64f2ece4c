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
    r = subprocess.run([sys.executable, "-m", "jobs.curate", "--input", str(tmp_path), "--output", str(tmp_path), "--profile", "nope"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown profile 'nope'" in r.stderr and "local" in r.stderr
