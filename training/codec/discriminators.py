"""The report's three discriminators (Section 4.1), each a set of sub-discriminators returning (logits, features).

  MultiPeriodDiscriminator      HiFi-GAN (Kong et al., 2020, Section 2.2): the waveform folded into [T / p, p] for each
                                period p and seen by 2-D convolutions that span one column: periodic structure.
  MultiResolutionDiscriminator  UnivNet (Jang et al., 2021, Section 2.3): log-magnitude spectrograms at several FFT
                                sizes, 2-D convolutions over time and frequency: spectral consistency.
  MultiScaleSTFTDiscriminator   EnCodec (Defossez et al., 2022, Section 3.4): the complex STFT (real and imaginary
                                parts as channels) at several scales, dilated in time: high-frequency detail and phase.

Every sub-discriminator returns its logits and the activations after each hidden layer (for feature matching). All
convolutions are weight-normed, as in the three papers. Spectrograms are computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from schemas.codec_training import DiscriminatorConfig

Output = tuple[torch.Tensor, list[torch.Tensor]]  # (logits, hidden activations) of one sub-discriminator


def _conv2d(cin: int, cout: int, kernel: tuple[int, int], stride=(1, 1), dilation=(1, 1)) -> nn.Module:
    padding = ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)
    return weight_norm(nn.Conv2d(cin, cout, kernel, stride=stride, dilation=dilation, padding=padding))


class _Stack(nn.Module):
    """Hidden conv layers with a leaky ReLU after each, then a one-channel output conv."""

    def __init__(self, layers: list[nn.Module], post: nn.Module, slope: float):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.post = post
        self.slope = slope

    def run(self, x: torch.Tensor) -> Output:
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), self.slope)
            features.append(x)
        return self.post(x), features


class PeriodDiscriminator(_Stack):
    """HiFi-GAN's: kernels (5, 1) with stride 3 down the folded time axis; widths c, 4c, 16c, 32c, 32c (c = 32 there)."""

    def __init__(self, period: int, channels: int):
        widths = [1, channels, 4 * channels, 16 * channels, 32 * channels, 32 * channels]
        strides = [3, 3, 3, 3, 1]
        layers = [_conv2d(widths[i], widths[i + 1], (5, 1), (strides[i], 1)) for i in range(5)]
        super().__init__(layers, _conv2d(widths[-1], 1, (3, 1)), slope=0.1)
        self.period = period

    def forward(self, audio: torch.Tensor) -> Output:
        """audio [B, 1, T] -> logits [B, 1, T', p]."""
        pad = -audio.shape[-1] % self.period
        x = F.pad(audio, (0, pad), mode="reflect")
        return self.run(x.view(x.shape[0], 1, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: list[int], channels: int):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, audio: torch.Tensor) -> list[Output]:
        return [d(audio) for d in self.discriminators]


def _stft(audio: torch.Tensor, n_fft: int, normalized: bool) -> torch.Tensor:
    """Complex STFT of [B, 1, T] in float32: Hann window of n_fft, hop n_fft / 4 -> [B, F, frames]."""
    with torch.autocast(audio.device.type, enabled=False):
        window = torch.hann_window(n_fft, device=audio.device)
        return torch.stft(
            audio[:, 0].float(), n_fft, n_fft // 4, window=window, normalized=normalized, return_complex=True
        )


class ResolutionDiscriminator(_Stack):
    """UnivNet's: the log-magnitude spectrogram [B, 1, frames, F]; kernel (3, 9), stride 2 along frequency."""

    def __init__(self, n_fft: int, channels: int):
        layers = [
            _conv2d(1, channels, (3, 9)),
            *(_conv2d(channels, channels, (3, 9), (1, 2)) for _ in range(3)),
            _conv2d(channels, channels, (3, 3)),
        ]
        super().__init__(layers, _conv2d(channels, 1, (3, 3)), slope=0.2)
        self.n_fft = n_fft

    def forward(self, audio: torch.Tensor) -> Output:
        magnitude = _stft(audio, self.n_fft, normalized=False).abs()
        return self.run(torch.log(magnitude.clamp_min(1e-5)).transpose(1, 2)[:, None])


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, resolutions: list[int], channels: int):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(n, channels) for n in resolutions)

    def forward(self, audio: torch.Tensor) -> list[Output]:
        return [d(audio) for d in self.discriminators]


class STFTDiscriminator(_Stack):
    """EnCodec's: the normalised complex STFT as 2 channels [B, 2, frames, F]; kernel (3, 9), time dilations 1, 2, 4
    with stride 2 along frequency, then a (3, 3) conv; widths grow with the dilations (c, 2c, 4c there c = 32)."""

    def __init__(self, n_fft: int, channels: int):
        widths = [channels, channels, 2 * channels, 4 * channels]
        layers = [_conv2d(2, widths[0], (3, 9))]
        for i, dilation in enumerate((1, 2, 4)):
            layers.append(_conv2d(widths[i], widths[i + 1], (3, 9), (1, 2), (dilation, 1)))
        layers.append(_conv2d(widths[-1], widths[-1], (3, 3)))
        super().__init__(layers, _conv2d(widths[-1], 1, (3, 3)), slope=0.2)
        self.n_fft = n_fft

    def forward(self, audio: torch.Tensor) -> Output:
        spec = _stft(audio, self.n_fft, normalized=True)
        return self.run(torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3))


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, sizes: list[int], channels: int):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, channels) for n in sizes)

    def forward(self, audio: torch.Tensor) -> list[Output]:
        return [d(audio) for d in self.discriminators]


class Discriminators(nn.Module):
    """The three together: audio [B, T] -> one (logits, features) per sub-discriminator, in a fixed order."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(config.periods, config.channels)
        self.mrd = MultiResolutionDiscriminator(config.resolutions, config.channels)
        self.mssd = MultiScaleSTFTDiscriminator(config.stft_sizes, config.channels)

    def forward(self, audio: torch.Tensor) -> list[Output]:
        x = audio[:, None]
        return [*self.mpd(x), *self.mrd(x), *self.mssd(x)]
