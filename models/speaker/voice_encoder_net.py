"""Resemblyzer's GE2E voice encoder network (3-layer LSTM over 40-band mels, 256-dim embedding)."""

from __future__ import annotations

import torch
from torch import nn

from models.speaker import frontend


class VoiceEncoderNet(nn.Module):
    def __init__(self, n_mels: int = frontend.N_MELS, hidden: int = 256, layers: int = 3, dim: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) -> (batch, dim) non-negative unit vectors."""
        _, (hidden, _) = self.lstm(mels)
        e = torch.relu(self.linear(hidden[-1]))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
