"""Golden fixtures from the released S2 reference implementation, for our codec and Dual-AR tests.

    python -m scripts.make_s2_golden --mirror /work/.mirror/fishaudio+fish-speech/repo            # all targets
    python -m scripts.make_s2_golden --source /path/to/fish-speech-export codec                   # one target

The reference is fishaudio/fish-speech at the pinned commit below: `--mirror` exports that commit from a git
directory, `--source` takes an export made already. It runs in a throwaway virtual environment holding only what
the reference modules import (torch and a handful of small packages, created on first use under `--venv`), never
in the project's own environment. Each target is a script in scripts/golden/ run by that environment's Python;
it seeds tiny random weights, runs the reference, and writes weights, inputs and the reference's outputs into
tests/data/golden/<target>/. The tests then compare our implementation to those files without the reference
installed. Nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PINNED_COMMIT = "3dd1f85c402ee6f0a17c2971d3b0dd8d881ca139"
ROOT = Path(__file__).resolve().parent.parent
TARGETS_DIR = Path(__file__).resolve().parent / "golden"
GOLDEN_DIR = ROOT / "tests" / "data" / "golden"
# What the reference's codec and Dual-AR modules import, nothing more (their package __init__s, which pull
# torchaudio and a dozen more, are bypassed by scripts/golden/reference_imports.py).
REFERENCE_PACKAGES = [
    "descript-audio-codec",
    "descript-audiotools",
    "einops",
    "loguru",
    "loralib",
    "numpy",
    "tqdm",
    "safetensors",
]
TORCH_SPEC = "torch==2.13.0"


def targets() -> list[str]:
    return sorted(
        p.stem for p in TARGETS_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "reference_imports"
    )


def export(mirror: Path, dest: Path) -> Path:
    """The pinned commit of a git directory, as files."""
    archive = subprocess.run(
        ["git", "--git-dir", str(mirror), "archive", PINNED_COMMIT], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dest, filter="data")
    return dest


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH_SPEC], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *REFERENCE_PACKAGES], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mirror", type=Path, help="git directory of fishaudio/fish-speech holding the pinned commit")
    src.add_argument("--source", type=Path, help="an export of fishaudio/fish-speech at the pinned commit")
    p.add_argument(
        "--venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "s2-reference-venv",
        help="the reference's environment",
    )
    p.add_argument("--out", type=Path, default=GOLDEN_DIR)
    p.add_argument("targets", nargs="*", help=f"default: all ({', '.join(targets())})")
    args = p.parse_args(argv)
    chosen = args.targets or targets()
    unknown = sorted(set(chosen) - set(targets()))
    if unknown:
        p.error(f"unknown targets {unknown}; known: {targets()}")
    python = ensure_venv(args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or export(args.mirror, Path(tmp))
        for target in chosen:
            out = args.out / target
            out.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "FISH_SPEECH_SRC": str(source), "OUT": str(out), "PYTHONHASHSEED": "0"}
            print(f"{target}: running the reference -> {out}", flush=True)
            subprocess.run([str(python), str(TARGETS_DIR / f"{target}.py")], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
