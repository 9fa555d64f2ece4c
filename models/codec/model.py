"""The S2 codec network: causal DAC-style encoder, the semantic + residual bottleneck, EVA-GAN-style decoder.

Attribute names and registration order follow the released checkpoint (`encoder.block.N`, `quantizer.*`,
`decoder.model.N`), so its state dict loads as is and ours saves in its key order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from models.codec.config import ENCODER_FFN_RATIO, ENCODER_HEAD_WIDTH, CodecConfig
from models.codec.layers import Snake, causal_wn_conv, causal_wn_conv_transpose
from models.codec.quantizer import SemanticResidualQuantizer
from models.codec.transformer import WindowedTransformer

DILATIONS = (1, 3, 9)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake(dim), causal_wn_conv(dim, dim, 7, dilation=dilation), Snake(dim), causal_wn_conv(dim, dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def encoder_block(width: int, stride: int, transformer_layers: int, config: CodecConfig) -> nn.Module:
    """Residual units at half width, then a strided conv to `width`, then (in the last block) the transformer."""
    half = width // 2
    transformer = (
        WindowedTransformer(
            width,
            transformer_layers,
            width // ENCODER_HEAD_WIDTH,
            config.encoder_head_dim,
            width * ENCODER_FFN_RATIO,
            config.encoder_window,
            config.norm_eps,
            config.rope_base,
        )
        if transformer_layers
        else nn.Identity()
    )
    units = [ResidualUnit(half, d) for d in DILATIONS]
    return _Block(*units, Snake(half), causal_wn_conv(half, width, 2 * stride, stride=stride), transformer)


def decoder_block(in_dim: int, out_dim: int, stride: int) -> nn.Module:
    units = [ResidualUnit(out_dim, d) for d in DILATIONS]
    return _Block(Snake(in_dim), causal_wn_conv_transpose(in_dim, out_dim, 2 * stride, stride), *units)


class _Block(nn.Module):
    """A sequence held under `block`, the name the checkpoint gives it."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Encoder(_Block):
    def __init__(self, config: CodecConfig):
        widths = config.encoder_widths
        blocks = [
            encoder_block(w, s, n, config)
            for w, s, n in zip(widths, config.encoder_rates, config.encoder_transformer_layers)
        ]
        super().__init__(
            causal_wn_conv(1, config.encoder_dim, 7),
            *blocks,
            Snake(widths[-1]),
            causal_wn_conv(widths[-1], config.latent_dim, 3),
        )


class Decoder(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        dims = [config.decoder_dim // 2**i for i in range(len(config.decoder_rates) + 1)]
        blocks = [decoder_block(dims[i], dims[i + 1], rate) for i, rate in enumerate(config.decoder_rates)]
        self.model = nn.Sequential(
            causal_wn_conv(config.latent_dim, dims[0], 7),
            *blocks,
            Snake(dims[-1]),
            causal_wn_conv(dims[-1], 1, 7),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


class S2CodecModel(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = SemanticResidualQuantizer(config)
        self.decoder = Decoder(config)
        self.weight_norm_folded = False

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded mono audio [B, L] with each item's length [B] -> codes [B, 1 + n, ceil(L / frame)] and each
        item's frame count ceil(length / frame). Every layer is causal, so an item's first frames do not depend on
        the padding after it: they equal the codes of the item encoded alone."""
        frame = self.config.frame_length
        pad = -audio.shape[-1] % frame
        codes = self.quantizer.encode(self.encoder(F.pad(audio, (0, pad))[:, None]))
        return codes, (lengths + frame - 1) // frame

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, 1 + n, T], each row within its codebook -> audio [B, T * frame] in [-1, 1]."""
        return self.decoder(self.quantizer.decode(codes))[:, 0]

    def fold_weight_norm(self) -> S2CodecModel:
        """Compute each weight-normed weight once, for inference: the same values every forward would compute,
        without recomputing them. The model then no longer has the checkpoint's keys (save refuses it)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight")
        self.weight_norm_folded = True
        return self
