"""The README stays true: its configuration table is the schema's, and CI runs its test command."""

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_reference_matches_the_schema():
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- CONFIG-REFERENCE -->\n(.*?)\n<!-- /CONFIG-REFERENCE -->", readme, re.S).group(1)
    assert table == runpy.run_path(str(ROOT / "scripts" / "config_reference.py"))["table"]()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test   #" in readme
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "make test" in ci
