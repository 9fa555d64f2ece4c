"""The w2v-BERT 2.0 backbone of the quality scorer: fbank features, encoder, masked mean pooling (torch)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch

from models.checkpoints import resolve_hf_checkpoint
from models.quality.fbank import MIN_SAMPLES, N_MELS, SAMPLE_RATE, STRIDE, SeamlessFbank
from models.signal import resample


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(torch.float32).unsqueeze(-1)
    return (hidden.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def prepare(waveforms: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """Mono float32 at 16 kHz, at least MIN_SAMPLES long (zero-padded: a reward call may pass very short audio).
    No copies when the input is already that: at 64 x 10 s per batch, host work competes with the GPU."""
    out = []
    for i, w in enumerate(waveforms):
        x = resample(np.asarray(w, dtype=np.float32), sample_rate, SAMPLE_RATE)
        if x.size == 0:
            raise ValueError(f"waveform {i} is empty")
        out.append(x if x.size >= MIN_SAMPLES else np.pad(x, (0, MIN_SAMPLES - x.size)))
    return out


def length_batches(waveforms: Sequence[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), longest first."""
    order = sorted(range(len(waveforms)), key=lambda i: -waveforms[i].size)
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


class W2vBertBackbone:
    """Fbank + w2v-BERT encoder + masked mean pooling: 16 kHz waveforms -> (B, hidden) utterance vectors."""

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype):
        expected = N_MELS * STRIDE
        if model.config.feature_projection_input_dim != expected:
            raise ValueError(
                f"backbone expects {model.config.feature_projection_input_dim}-dim features; the fbank makes {expected}"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.fbank = SeamlessFbank(device)

    @classmethod
    def load(cls, checkpoint: str, device: torch.device, dtype: torch.dtype) -> W2vBertBackbone:
        from transformers import Wav2Vec2BertModel

        path = resolve_hf_checkpoint(checkpoint, "quality scorer (w2v-BERT backbone)", "quality.model.checkpoint")
        return cls(Wav2Vec2BertModel.from_pretrained(path), device, dtype)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def autocast(self):
        if self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.dtype)
        return nullcontext()

    def pooled(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder forward + masked mean; gradients flow where the model has trainable parameters."""
        with self.autocast():
            hidden = self.model(input_features=features, attention_mask=mask).last_hidden_state
        frame_mask = self.model._get_feature_vector_attention_mask(hidden.shape[1], mask)  # adapter-aware
        return masked_mean(hidden, frame_mask)

    @torch.inference_mode()
    def embed(self, waveforms: Sequence[np.ndarray], batch_size: int) -> torch.Tensor:
        """(N, hidden) float32 on the backbone's device, in input order. Waveforms: 16 kHz, >= MIN_SAMPLES."""
        out = torch.empty(len(waveforms), self.hidden_size, device=self.device)
        for idx in length_batches(waveforms, batch_size):
            out[idx] = self.pooled(*self.fbank([waveforms[i] for i in idx]))
        return out
