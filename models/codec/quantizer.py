"""The bottleneck: downsample x4 with ConvNeXt stages, a windowed transformer, one semantic codebook, nine residual
codebooks on what it leaves, and the mirror path back up for decoding.

Names follow the released checkpoint's key layout (`semantic_quantizer.quantizers.0.in_proj`, `downsample.0.1.dwconv`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.codec.config import CodecConfig
from models.codec.layers import CausalConv1d, CausalConvTranspose1d, weight_normed
from models.codec.transformer import WindowedTransformer


class ConvNeXtBlock(nn.Module):
    """Causal depthwise conv, LayerNorm, 4x MLP with exact GELU, per-channel scale, residual."""

    def __init__(self, dim: int, kernel_size: int = 7, mlp_ratio: int = 4, scale_init: float = 1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), scale_init))
        self.dwconv = CausalConv1d(dim, dim, kernel_size, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, mlp_ratio * dim)
        self.pwconv2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(self.dwconv(x).transpose(1, 2)))))
        return x + (self.gamma * y).transpose(1, 2)


class VectorQuantizer(nn.Module):
    """Project to a few dims, pick the codebook row of highest cosine similarity, project back."""

    def __init__(self, dim: int, size: int, codebook_dim: int):
        super().__init__()
        self.in_proj = weight_normed(nn.Conv1d(dim, codebook_dim, 1))
        self.out_proj = weight_normed(nn.Conv1d(codebook_dim, dim, 1))
        self.codebook = nn.Embedding(size, codebook_dim)

    def nearest(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, d, T] -> codes [B, T]."""
        batch, dim, _ = latents.shape
        vectors = F.normalize(latents.transpose(1, 2).reshape(-1, dim))
        book = F.normalize(self.codebook.weight)
        # the squared distance term by term, as the reference evaluates it: its rounding settles near ties alike
        distance = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ book.t() + book.pow(2).sum(1, keepdim=True).t()
        return distance.neg().argmax(dim=1).view(batch, -1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> raw codebook rows [B, d, T]."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.in_proj(z)
        codes = self.nearest(latents)
        rows = self.lookup(codes)
        # latents + (rows - latents) is rows up to rounding; the reference's residuals carry that rounding, so do ours
        return self.out_proj(latents + (rows - latents)), codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.lookup(codes))


class ResidualVectorQuantizer(nn.Module):
    def __init__(self, dim: int, n_codebooks: int, size: int, codebook_dim: int):
        super().__init__()
        self.quantizers = nn.ModuleList(VectorQuantizer(dim, size, codebook_dim) for _ in range(n_codebooks))

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, D, T] -> (the sum of the quantized parts [B, D, T], codes [B, n, T]); each codebook quantizes
        what the ones before it left."""
        residual, total, codes = z, 0, []
        for quantizer in self.quantizers:
            part, part_codes = quantizer.quantize(residual)
            total = total + part
            residual = residual - part
            codes.append(part_codes)
        return total, torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        total = 0
        for i, quantizer in enumerate(self.quantizers):
            total = total + quantizer.decode(codes[:, i])
        return total


class SemanticResidualQuantizer(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        dim = config.latent_dim
        self.semantic_quantizer = ResidualVectorQuantizer(dim, 1, config.semantic_codebook_size, config.codebook_dim)
        self.quantizer = ResidualVectorQuantizer(
            dim, config.residual_codebooks, config.codebook_size, config.codebook_dim
        )
        self.downsample = nn.Sequential(
            *(nn.Sequential(CausalConv1d(dim, dim, f, stride=f), ConvNeXtBlock(dim)) for f in config.downsample_factors)
        )
        self.upsample = nn.Sequential(
            *(
                nn.Sequential(CausalConvTranspose1d(dim, dim, f, f), ConvNeXtBlock(dim))
                for f in reversed(config.downsample_factors)
            )
        )
        self.pre_module, self.post_module = (
            WindowedTransformer(
                dim,
                config.quantizer_layers,
                config.quantizer_heads,
                config.quantizer_head_dim,
                config.quantizer_ffn_dim,
                config.quantizer_window,
                config.norm_eps,
                config.rope_base,
            )
            for _ in range(2)
        )

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents at the hop rate [B, D, T * factor] -> codes [B, 1 + n, T]."""
        z = self.pre_module(self.downsample(z))
        # codes are chosen in float32 even under autocast: a bf16 nearest-neighbour search would pick other rows
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            semantic, semantic_codes = self.semantic_quantizer.quantize(z)
            _, residual_codes = self.quantizer.quantize(z - semantic)
        return torch.cat([semantic_codes, residual_codes], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, 1 + n, T] -> latents at the hop rate [B, D, T * factor]."""
        z = self.semantic_quantizer.decode(codes[:, :1]) + self.quantizer.decode(codes[:, 1:])
        return self.upsample(self.post_module(z))
