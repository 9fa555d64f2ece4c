"""Causal convolutions and the Snake activation.

Module and attribute names follow the released checkpoint's key layout (`<name>.conv.weight`, `alpha`), so that its
state dict loads without a translation table. Every convolution is causal: an output frame depends on no input after
it, which is what lets a right-padded batch give each item exactly the frames it gets alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def weight_normed(module: nn.Module) -> nn.Module:
    """Weight norm over every dim but the first, as the released weights were trained (magnitude `original0`,
    direction `original1`)."""
    return weight_norm(module, name="weight", dim=0)


class CausalConv1d(nn.Module):
    """Left-padded by the receptive field less the stride; a length L becomes ceil(L / stride) frames."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1, groups: int = 1
    ):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)
        self.stride = stride
        self.left_pad = (kernel_size - 1) * dilation + 1 - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        right_pad = math.ceil(length / self.stride) * self.stride - length
        return self.conv(F.pad(x, (self.left_pad, right_pad)))


class CausalConvTranspose1d(nn.Module):
    """Upsampling by `stride`: the tail beyond L * stride, which would need future frames, is cut."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[..., : x.shape[-1] * self.stride]


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, alpha per channel; the 1e-9 keeps a zero alpha finite."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in the input's dtype, as the reference runs it cast to bf16: under autocast a float32 alpha would double the
        # memory traffic of these full-rate elementwise ops
        alpha = self.alpha.to(x.dtype)
        return x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)


def causal_wn_conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
) -> CausalConv1d:
    conv = CausalConv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)
    conv.conv = weight_normed(conv.conv)
    return conv


def causal_wn_conv_transpose(
    in_channels: int, out_channels: int, kernel_size: int, stride: int
) -> CausalConvTranspose1d:
    conv = CausalConvTranspose1d(in_channels, out_channels, kernel_size, stride)
    conv.conv = weight_normed(conv.conv)
    return conv
