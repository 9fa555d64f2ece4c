"""The codec's GAN losses: multi-scale mel reconstruction, adversarial (least squares or hinge), feature matching and
semantic distillation. The VQ losses come with the quantized features (training.codec.generator). All in float32.

Over sub-discriminators the adversarial and feature-matching terms are summed (HiFi-GAN, DAC), so their scale grows
with the number of sub-discriminators, as in the papers whose loss weights the config's defaults take.
"""

from __future__ import annotations

import librosa
import torch
import torch.nn.functional as F
from torch import nn

from training.codec.discriminators import Output


class MultiScaleMelLoss(nn.Module):
    """DAC's mel reconstruction loss: at each (window, bands) scale, L1 between log10 mel magnitudes (clamped at
    1e-5) of the target and the reconstruction, Hann window, hop = window / 4, Slaney mel bands up to Nyquist
    (librosa's filterbank); summed over scales. Zero exactly when the two signals are equal."""

    def __init__(self, sample_rate: int, windows: list[int], bins: list[int]):
        super().__init__()
        self.windows = list(windows)
        for i, (window, n_mels) in enumerate(zip(windows, bins)):
            filters = librosa.filters.mel(sr=sample_rate, n_fft=window, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
            self.register_buffer(f"filters_{i}", torch.from_numpy(filters).float(), persistent=False)

    def log_mel(self, audio: torch.Tensor, i: int) -> torch.Tensor:
        window = self.windows[i]
        spec = torch.stft(
            audio.float(),
            window,
            window // 4,
            window=torch.hann_window(window, device=audio.device),
            return_complex=True,
        ).abs()
        return torch.log10((getattr(self, f"filters_{i}") @ spec).clamp_min(1e-5))

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """[B, T] each -> scalar."""
        with torch.autocast(reconstruction.device.type, enabled=False):
            return sum(
                F.l1_loss(self.log_mel(reconstruction, i), self.log_mel(target, i)) for i in range(len(self.windows))
            )


def discriminator_loss(real: list[Output], fake: list[Output], kind: str) -> torch.Tensor:
    """Least squares: E(1 - D(x))^2 + E D(G(z))^2; hinge: E relu(1 - D(x)) + E relu(1 + D(G(z))); summed over
    sub-discriminators. `fake` must come from detached audio."""
    total = 0.0
    for (r, _), (f, _) in zip(real, fake):
        r, f = r.float(), f.float()
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + (1 - r).pow(2).mean() + f.pow(2).mean()
    return total


def generator_adversarial_loss(fake: list[Output], kind: str) -> torch.Tensor:
    """Least squares: E(1 - D(G(z)))^2; hinge: E relu(1 - D(G(z))) (EnCodec); summed over sub-discriminators."""
    total = 0.0
    for f, _ in fake:
        f = f.float()
        total = total + (F.relu(1 - f).mean() if kind == "hinge" else (1 - f).pow(2).mean())
    return total


def feature_matching_loss(real: list[Output], fake: list[Output]) -> torch.Tensor:
    """Mean L1 between the hidden activations on real (held fixed) and decoded audio, per layer, summed over layers
    and sub-discriminators (DAC, HiFi-GAN)."""
    total = 0.0
    for (_, real_features), (_, fake_features) in zip(real, fake):
        for r, f in zip(real_features, fake_features):
            total = total + F.l1_loss(f.float(), r.detach().float())
    return total


def semantic_loss(predicted: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """predicted, teacher [B, frames, D] at the codec's frame rate -> scalar. Cosine: mean over frames of
    1 - cos(predicted, teacher) (Mimi); mse: mean squared error."""
    predicted, teacher = predicted.float(), teacher.float()
    if kind == "mse":
        return F.mse_loss(predicted, teacher)
    return (1 - F.cosine_similarity(predicted, teacher, dim=-1)).mean()
