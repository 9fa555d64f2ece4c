"""A tiny codec-training run: the tiny random codec, narrow discriminators, short crops, a shard of a few clips."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile

from curation.io.audio import decode_file
from schemas.codec_training import CodecTrainConfig
from schemas.config import layered
from tests.conftest import DATA

CLIPS = ("speech/leopard__test.wav", "fullband/whisper__jfk_5s.flac", "speech/lhotse__LJ002-0020.wav")


def write_shard(folder: Path, seconds: float = 1.5) -> Path:
    """A WebDataset tar of KEY.flac (full band: 44.1 kHz) from the first seconds of a few test clips."""
    folder.mkdir(parents=True, exist_ok=True)
    shard = folder / "shard-000000.tar"
    with tarfile.open(shard, "w") as tar:
        for i, name in enumerate(CLIPS):
            audio = decode_file(str(DATA / name), 44100).audio[: int(seconds * 44100)]
            buffer = io.BytesIO()
            soundfile.write(buffer, np.asarray(audio), 44100, format="FLAC")
            info = tarfile.TarInfo(f"clip{i:02d}_00000.flac")
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return shard


def tiny_codec_config(sources: list, out, *overrides: str, teacher: Path | None = None) -> CodecTrainConfig:
    base = {
        "data": {"sources": [str(s) for s in sources], "crop_seconds": 0.05, "batch_size": 2, "heldout_clips": 1},
        "codec": {"size": "tiny"},
        "discriminators": {"periods": [2, 3], "resolutions": [256], "stft_sizes": [128], "channels": 1},
        "semantic": {"enabled": teacher is not None, "teacher": str(teacher), "layer": 2},
        "eval": {"every": 1000, "max_seconds": 0.5},
        "runtime": {
            "dtype": "float32",
            "device": "cpu",
            "max_steps": 3,
            "log_every": 1,
            "ckpt_every": 1000,
            "cpu_threads": 1,
        },
        "optimizer": {"lr_generator": 1e-3, "lr_discriminator": 1e-3},
    }
    base["runtime"]["out"] = str(out)
    return layered(CodecTrainConfig, base, overrides=list(overrides))
