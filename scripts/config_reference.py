"""Print the README's configuration reference (a Markdown table) from schemas/config.py.

    .venv/bin/python -m scripts.config_reference   # paste between the CONFIG-REFERENCE markers
tests/jobs/test_docs.py fails when the README's table differs from this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.config import CurateConfig, Resources

NESTED_LEAVES = ("model", "speaker_model", "resources", "fuse_stages")
WHOLE = ("resources", "fuse_stages")  # shown with every field


def rows(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if field.is_required():
            yield key, "required", field.description or ""
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel) and name not in NESTED_LEAVES:
            yield from rows(type(default), key + ".")
            continue
        if isinstance(default, BaseModel):
            dump = default.model_dump()
            if name not in WHOLE:
                dump = {k: v for k, v in dump.items() if k in ("name", "checkpoint", "batch_size") and v is not None}
            value = json.dumps(dump, separators=(", ", ": "))
        else:
            value = json.dumps(default)
        doc = field.description or (Resources.__doc__.split(".")[0] + "." if name == "resources" else "")
        yield key, f"`{value}`", " ".join(doc.split())


def table() -> str:
    lines = ["| field | default (`local` profile) | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | {v} | {d} |" for k, v, d in rows(CurateConfig)]
    return "\n".join(lines)


def write_readme(path: Path) -> None:
    """Replace the README's generated block with the current table."""
    text = path.read_text()
    start, end = "<!-- CONFIG-REFERENCE -->\n", "\n<!-- /CONFIG-REFERENCE -->"
    head, rest = text.split(start, 1)
    path.write_text(head + start + table() + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme(Path(__file__).resolve().parents[1] / "README.md")
    else:
        print(table())
