"""`S2Codec`: mono waveforms to S2 codes ([codebooks, frames] int16) and codes back to 44.1 kHz audio.

Built from a ModelSpec (name 's2-codec', checkpoint = a `codec.pth` or its folder, device, dtype, batch size). Torch
is imported when a codec is built, not with this module: `S2Codec.preflight` checks the weights in a process that
must stay without torch (the pipeline's driver).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from models.codec import weights
from schemas.config import ModelSpec


class S2Codec:
    """Deterministic for the same input. A batch gives each item the codes it gets alone (every layer is causal, so the
    padding after an item cannot reach its frames) and its audio up to float rounding."""

    def __init__(self, spec: ModelSpec):
        from models.checkpoints import pick_device, pick_dtype
        from models.codec.checkpoint import load_codec

        weights.check_name(spec)
        path = weights.weights_file(spec.checkpoint)
        model = load_codec(path)
        config = model.config
        self.weights_sha256 = weights.file_sha256(path)
        self.model_id = f"{spec.name}:{path.parent.name}/{path.name}@{self.weights_sha256[:12]}" + (
            "+random-init" if config.random_init else ""
        )
        self.random_init = config.random_init
        self.sample_rate = config.sample_rate
        self.frame_length = config.frame_length
        self.frame_rate = config.sample_rate / config.frame_length
        self.num_codebooks = config.num_codebooks
        self.codebook_sizes = config.codebook_sizes
        self.batch_size = spec.batch_size
        self.device = pick_device(spec.device)
        self.dtype = pick_dtype(spec.dtype, self.device)
        self.model = model.fold_weight_norm().to(self.device)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> S2Codec:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = weights.SETTING) -> None:
        """Raise CheckpointUnavailableError (naming `<setting>.checkpoint` and how to get weights) unless the
        checkpoint and its sidecar are there and readable; imports no torch, loads no weights."""
        weights.preflight(spec, setting)

    def encode(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Mono float audio at `sample_rate` -> per item codes [num_codebooks, ceil(n / frame_length)] int16, where n is
        its length at the codec's rate. ValueError naming the item for empty, multi-channel or non-finite audio."""
        import torch

        from models.signal import resample

        audio = []
        for i, x in enumerate(waveforms):
            x = np.asarray(x, dtype=np.float32)
            if x.ndim != 1 or x.size == 0:
                raise ValueError(
                    f"s2 codec encode: item {i}: expected non-empty mono audio of shape (samples,), got shape {x.shape}"
                )
            if not np.isfinite(x).all():
                raise ValueError(f"s2 codec encode: item {i}: audio holds NaN or infinite samples")
            audio.append(resample(x, sample_rate, self.sample_rate))
        codes: list[np.ndarray] = [np.empty(0)] * len(audio)
        for batch in self._batches([len(a) for a in audio]):
            padded = np.zeros((len(batch), len(audio[batch[0]])), dtype=np.float32)
            for row, i in enumerate(batch):
                padded[row, : len(audio[i])] = audio[i]
            with self._inference():
                lengths = torch.tensor([len(audio[i]) for i in batch], device=self.device)
                out, frames = self.model.encode(torch.from_numpy(padded).to(self.device), lengths)
                out, frames = out.cpu().numpy(), frames.tolist()
            for row, i in enumerate(batch):
                codes[i] = out[row, :, : frames[row]].astype(np.int16)
        return codes

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Codes [num_codebooks, T] -> float32 audio at `sample_rate`, T * frame_length samples per item. ValueError
        naming the item, the codebook row and the value for codes outside a codebook (the reference clamps them)."""
        import torch

        arrays = []
        for i, c in enumerate(codes):
            c = np.asarray(c)
            if (
                c.ndim != 2
                or c.shape[0] != self.num_codebooks
                or c.shape[1] == 0
                or not np.issubdtype(c.dtype, np.integer)
            ):
                raise ValueError(
                    f"s2 codec decode: item {i}: expected integer codes of shape ({self.num_codebooks}, frames >= 1), got {c.dtype} {c.shape}"
                )
            for row, size in enumerate(self.codebook_sizes):
                outside = (c[row] < 0) | (c[row] >= size)
                if outside.any():
                    raise ValueError(
                        f"s2 codec decode: item {i}: codebook row {row} holds {c[row][outside][0]}, outside 0..{size - 1}"
                    )
            arrays.append(c.astype(np.int64))
        audio: list[np.ndarray] = [np.empty(0)] * len(arrays)
        for batch in self._batches([c.shape[1] for c in arrays]):
            padded = np.zeros((len(batch), self.num_codebooks, arrays[batch[0]].shape[1]), dtype=np.int64)
            for row, i in enumerate(batch):
                padded[row, :, : arrays[i].shape[1]] = arrays[i]
            with self._inference():
                out = self.model.decode(torch.from_numpy(padded).to(self.device)).float().cpu().numpy()
            for row, i in enumerate(batch):
                audio[i] = out[row, : arrays[i].shape[1] * self.frame_length].copy()
        return audio

    def _batches(self, lengths: list[int]) -> Iterator[list[int]]:
        """Item indices, longest first, in batches of `batch_size`: items of similar length share a batch."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    @contextmanager
    def _inference(self):
        import torch

        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32),
        ):
            yield
