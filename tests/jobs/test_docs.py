"""The README stays true: its configuration table is the schema's, and CI runs its test command."""

import re
from pathlib import Path

from scripts.config_reference import table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_reference_matches_the_schema():
    readme = (ROOT / "README.md").read_text()
    readme_table = re.search(r"<!-- CONFIG-REFERENCE -->\n(.*?)\n<!-- /CONFIG-REFERENCE -->", readme, re.S).group(1)
    assert readme_table == table()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test   #" in readme
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "make test" in ci
