"""silero-vad: frame-level speech probabilities, batched.

The weights ship in the silero-vad wheel (no download). silero is a streaming model whose per-call cost
is dominated by overhead, so audio is cut into pieces that run as one batch; each piece starts with a
short pre-roll of the preceding audio to warm the recurrent state, whose frames are then discarded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.checkpoints import CheckpointUnavailableError, package_dir
from models.signal import resample
from schemas.config import ModelSpec

FRAME = 512  # samples per probability at 16 kHz (32 ms)
PREROLL_FRAMES = 16


class SileroVad:
    sample_rate = 16000
    frame_s = FRAME / 16000

    def __init__(self, spec: ModelSpec, piece_s: float = 30.0):
        from silero_vad import load_silero_vad

        self.model = load_silero_vad(onnx=False)
        self.model_id = "silero-vad"
        self.batch_size = max(spec.batch_size, 1) * 8
        self.piece = int(piece_s * self.sample_rate) // FRAME * FRAME

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> SileroVad:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        """The weights ship inside the silero-vad wheel: only the package must be there."""
        if package_dir("silero_vad") is None:
            raise CheckpointUnavailableError(f"{setting}: silero-vad is not installed (`pip install silero-vad`)")

    def speech_probs(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Per 32 ms frame speech probability for each waveform (len = ceil(n / 512) at 16 kHz)."""
        import torch

        waves = [resample(w, sample_rate, self.sample_rate) for w in waveforms]
        pre = PREROLL_FRAMES * FRAME
        pieces, owners = [], []
        for idx, w in enumerate(waves):
            n_frames = -(-len(w) // FRAME)
            padded = np.zeros(n_frames * FRAME, np.float32)
            padded[: len(w)] = w
            for start in range(0, len(padded), self.piece):
                lo = max(0, start - pre)
                chunk = np.zeros(pre + self.piece, np.float32)
                part = padded[lo : start + self.piece]
                chunk[pre - (start - lo) : pre - (start - lo) + len(part)] = part
                pieces.append(chunk)
                owners.append((idx, min(self.piece, len(padded) - start) // FRAME))
        out: list[list[np.ndarray]] = [[] for _ in waves]
        for b in range(0, len(pieces), self.batch_size):
            self.model.reset_states()
            with torch.inference_mode():
                probs = self.model.audio_forward(
                    torch.from_numpy(np.stack(pieces[b : b + self.batch_size])), self.sample_rate
                )
            for row, (idx, frames) in zip(probs.numpy(), owners[b : b + self.batch_size]):
                out[idx].append(row[PREROLL_FRAMES : PREROLL_FRAMES + frames])
        return [np.concatenate(p).astype(np.float32) if p else np.zeros(0, np.float32) for p in out]
