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
        """Per 32 ms frame speech probability for each waveform (len = ceil(n / 512) at 16 kHz). Each waveform's
        pieces are batched with each other only, so its probabilities never depend on the other waveforms of the call
        (a batched matrix product may round differently with the batch's shape)."""
        return [self._probs(resample(w, sample_rate, self.sample_rate)) for w in waveforms]

    def _probs(self, w: np.ndarray) -> np.ndarray:
        import torch

        pre = PREROLL_FRAMES * FRAME
        padded = np.zeros(-(-len(w) // FRAME) * FRAME, np.float32)
        padded[: len(w)] = w
        # silero runs frame by frame, each frame seeing only the frames before it: a waveform shorter than a piece is
        # run at its own length, not padded to the piece (a 1.5 s input would otherwise cost 30 s of frames)
        piece = min(self.piece, len(padded))
        pieces, frames = [], []
        for start in range(0, len(padded), self.piece):
            lo = max(0, start - pre)
            chunk = np.zeros(pre + piece, np.float32)
            part = padded[lo : start + piece]
            chunk[pre - (start - lo) : pre - (start - lo) + len(part)] = part
            pieces.append(chunk)
            frames.append(min(piece, len(padded) - start) // FRAME)
        out = []
        for b in range(0, len(pieces), self.batch_size):
            self.model.reset_states()
            with torch.inference_mode():
                probs = self.model.audio_forward(
                    torch.from_numpy(np.stack(pieces[b : b + self.batch_size])), self.sample_rate
                )
            out += [
                row[PREROLL_FRAMES : PREROLL_FRAMES + n]
                for row, n in zip(probs.numpy(), frames[b : b + self.batch_size])
            ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
