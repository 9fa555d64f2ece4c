"""The semantic-distillation teacher: w2v-BERT 2.0 (transformers' Wav2Vec2BertModel), one layer's activations at the
codec's frame rate.

Crops at the codec's rate are resampled to 16 kHz (soxr), turned into w2v-BERT's fbank features (the quality
scorer's, models.quality.fbank), run through the frozen encoder; the chosen layer's output (hidden_states[layer]: 0 is
the feature projection, 16 the 16th layer's output) at its 50 Hz is linearly interpolated to the codec's frames.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoints import resolve_hf_checkpoint
from models.quality.fbank import SAMPLE_RATE, SeamlessFbank
from models.signal import resample


class TeacherError(ValueError):
    """A teacher that cannot serve the configured layer; one line naming the setting."""


class W2vBertTeacher:
    def __init__(self, checkpoint: str, layer: int, device: torch.device, dtype: torch.dtype):
        from transformers import Wav2Vec2BertModel

        path = resolve_hf_checkpoint(checkpoint, "semantic teacher (w2v-BERT 2.0)", "semantic.teacher")
        self.model = Wav2Vec2BertModel.from_pretrained(path).to(device).eval().requires_grad_(False)
        layers = self.model.config.num_hidden_layers
        if layer > layers:
            raise TeacherError(f"semantic.layer {layer}: the teacher {checkpoint} has {layers} layers")
        self.layer = layer
        self.device = device
        self.dtype = dtype
        self.fbank = SeamlessFbank(device)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def features(self, audio: torch.Tensor, sample_rate: int, frames: int) -> torch.Tensor:
        """audio [B, T] at `sample_rate` -> [B, frames, dim] float32."""
        waves = [resample(x, sample_rate, SAMPLE_RATE) for x in audio.float().cpu().numpy().astype(np.float32)]
        inputs, mask = self.fbank(waves)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = self.model(input_features=inputs, attention_mask=mask, output_hidden_states=True)
        hidden = out.hidden_states[self.layer].float().transpose(1, 2)
        return F.interpolate(hidden, size=frames, mode="linear", align_corners=False).transpose(1, 2)
