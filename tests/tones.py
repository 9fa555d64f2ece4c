"""Tiny synthetic inputs: short tones written as 16 kHz WAV files (deterministic, no randomness)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def write_tones(root: Path, n: int, first_s: float = 1.0, step_s: float = 0.01) -> list[Path]:
    """`n` tones, input i lasting first_s + i * step_s seconds at 200 + i Hz, amplitude 0.3."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        t = np.arange(int(round((first_s + i * step_s) * RATE))) / RATE
        path = root / f"tone-{i:06d}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + i) * t)).astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths
