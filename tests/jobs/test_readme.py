"""The README is executed: every fenced shell block (```bash, ```sh, ```shell) runs verbatim, in order, in one fresh
folder holding the repository's files, with `s2`, `python` and the Makefile's venv pointing at this checkout, so the
README cannot drift from the code.

A block is held back only by a visible comment on the line above its fence, with the reason:

  <!-- readme-test: skip (needs a GPU) -->           not run (a GPU, a cluster, S3 credentials, a long benchmark)
  <!-- readme-test: parse-only (example paths) -->  each `s2 ...` command is parsed by the CLI's parser, not run

A block that fails fails the test with its output. The whole file takes a few minutes on 2 cores (it curates
examples/ once, with `make demo`, and everything after runs on tiny random models).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELLS = ("bash", "sh", "shell")
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|parse-only)\s*\((?P<why>[^)]+)\)\s*-->$")
# checkout entries a README command must not see from the developer's own runs (it writes its own)
LEFT_OUT = {".git", ".venv", "out", "train_out", "grpo_out", "bench_out", "runs", "tiny"}
BLOCK_TIMEOUT_S = 420
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "2>", "2>&1"}


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    mode: str  # run, skip or parse-only
    why: str
    code: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def blocks(text: str) -> list[Block]:
    """Every fenced shell block with the marker above it (if any); an unknown `readme-test` comment is an error."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```"):
            i += 1
            continue
        language = fence[3:].strip()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if language in SHELLS:
            above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            mode, why = "run", ""
            if "readme-test" in above:
                m = MARKER.match(above)
                if m is None:
                    raise ValueError(f"README.md:{i}: unreadable marker {above!r}")
                mode, why = m.group(1), m.group("why")
            code = textwrap.dedent("\n".join(lines[i + 1 : end]))  # a block in a list item is indented
            out.append(Block(i + 1, mode, why, code + "\n"))
        i = end + 1
    return out


def commands(code: str) -> list[list[str]]:
    """The `s2` command lines of a block as argument lists: continuations joined, comments and anything from the
    first shell operator on dropped."""
    joined = re.sub(r"\\\n", " ", code)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] != ["s2"]:
            continue
        cut = next((k for k, w in enumerate(words) if w in SHELL_OPERATORS), len(words))
        out.append(words[1:cut])
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fresh folder that looks like a clone (the checkout's files, linked), with `s2` and `python` on PATH running
    this checkout, and a stand-in venv for the Makefile (VENV) that counts as installed."""
    folder = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in LEFT_OUT and not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry)
    venv = tmp_path_factory.mktemp("venv")
    (venv / "bin").mkdir()
    for name, line in (("python", f'exec {sys.executable} "$@"'), ("s2", f'exec {sys.executable} -m jobs.cli "$@"')):
        shim = venv / "bin" / name
        shim.write_text(f"#!/bin/sh\n{line}\n")
        shim.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: `make` installs nothing
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "VENV": str(venv),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    return folder, env


def stop_group(shell: subprocess.Popen) -> None:
    """SIGTERM to the block's process group, SIGKILL to what is left after 15 s."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 0)):
        try:
            os.killpg(shell.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(shell.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


README_BLOCKS = blocks(README.read_text())


def test_the_readme_has_blocks_to_run_and_every_held_back_block_says_why():
    modes = {b.mode for b in README_BLOCKS}
    assert "run" in modes and all(b.why.strip() for b in README_BLOCKS if b.mode != "run")


@pytest.mark.parametrize("block", README_BLOCKS, ids=[b.name for b in README_BLOCKS])
def test_readme_block(block, workdir):
    if block.mode == "skip":
        pytest.skip(f"{block.name}: {block.why}")
    if block.mode == "parse-only":
        parser = build_parser()
        for argv in commands(block.code):
            try:
                parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"{block.name}: `s2 {shlex.join(argv)}` does not parse")
        return
    folder, env = workdir
    # its own process group: whatever the block leaves running (a server it started in the background) is stopped
    shell = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", block.code],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = shell.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_group(shell)
        stdout, stderr = shell.communicate()
        pytest.fail(
            f"{block.name} did not finish in {BLOCK_TIMEOUT_S} s:\n{block.code}\n{stdout[-3000:]}\n{stderr[-5000:]}"
        )
    finally:
        stop_group(shell)
    r = subprocess.CompletedProcess(shell.args, shell.returncode, stdout, stderr)
    assert r.returncode == 0, (
        f"{block.name} failed ({r.returncode}):\n{block.code}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-5000:]}"
    )
