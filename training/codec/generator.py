"""The codec as a generator to train: models.codec's network run with straight-through quantization, VQ losses,
quantizer dropout and the semantic head. The inference path (models.codec) is untouched: the same modules, so the
trained weights save in the released format.

Quantization (DAC's factorised codes, which the released codec uses): each codebook projects to 8 dims, picks the
row of highest cosine similarity (float32, as at inference), and passes the encoder's gradient straight through
(z + (row - z).detach()). Codebooks learn by gradient, not EMA: the codebook loss ||sg(z) - row||^2 moves the rows,
the commitment loss ||z - sg(row)||^2 the encoder (VQ-VAE). Quantizer dropout (DAC): a crop marked for dropout uses
only its first k residual codebooks; the semantic codebook is always used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.codec.model import S2CodecModel
from models.codec.quantizer import VectorQuantizer


@dataclass
class GeneratorOutput:
    audio: torch.Tensor  # [B, T] the reconstruction
    commitment: torch.Tensor  # scalar
    codebook: torch.Tensor  # scalar
    semantic: torch.Tensor | None  # [B, frames, teacher dim]: the head's prediction, or None without a head
    codes: torch.Tensor  # [B, 1 + n, frames]


def quantize_straight_through(vq: VectorQuantizer, z: torch.Tensor):
    """z [B, D, T] -> (quantized [B, D, T], codes [B, T], commitment [B], codebook [B])."""
    latents = vq.in_proj(z)
    codes = vq.nearest(latents.detach())
    rows = vq.lookup(codes)
    commitment = (latents - rows.detach()).pow(2).mean(dim=(1, 2))
    codebook = (rows - latents.detach()).pow(2).mean(dim=(1, 2))
    return vq.out_proj(latents + (rows - latents).detach()), codes, commitment, codebook


class CodecGenerator(nn.Module):
    """`codec` (the released network) and `semantic_head` (a per-frame linear map from the first codebook's quantized
    features to the teacher's width, Mimi's; None without distillation). `frozen_front`: the encoder and quantizer
    run without gradients (decoder-only fine-tuning)."""

    def __init__(self, codec: S2CodecModel, teacher_dim: int | None, frozen_front: bool = False):
        super().__init__()
        self.codec = codec
        dim = codec.config.latent_dim
        self.semantic_head = nn.Conv1d(dim, teacher_dim, 1) if teacher_dim else None
        self.frozen_front = frozen_front
        if frozen_front:
            for module in (codec.encoder, codec.quantizer):
                module.requires_grad_(False)

    def forward(self, audio: torch.Tensor, residual_kept: torch.Tensor) -> GeneratorOutput:
        """audio [B, T] (T a multiple of the frame length), residual_kept [B]: residual codebooks each crop uses."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_front):
            semantic_zq, zq, codes, commitment, codebook = self.quantize(audio, residual_kept)
        q = self.codec.quantizer
        decoded = self.codec.decoder(q.upsample(q.post_module(zq)))[:, 0, : audio.shape[-1]]
        predicted = self.semantic_head(semantic_zq).transpose(1, 2) if self.semantic_head is not None else None
        return GeneratorOutput(decoded, commitment, codebook, predicted, codes)

    def quantize(self, audio: torch.Tensor, residual_kept: torch.Tensor):
        q = self.codec.quantizer
        z = q.pre_module(q.downsample(self.codec.encoder(audio[:, None])))
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            semantic_zq, semantic_codes, commitment, codebook = quantize_straight_through(
                q.semantic_quantizer.quantizers[0], z
            )
            residual, zq, codes = z - semantic_zq, semantic_zq, [semantic_codes]
            for i, vq in enumerate(q.quantizer.quantizers):
                part, part_codes, part_commitment, part_codebook = quantize_straight_through(vq, residual)
                kept = (i < residual_kept).to(part.dtype)
                zq = zq + part * kept[:, None, None]
                residual = residual - part
                commitment = commitment + part_commitment * kept
                codebook = codebook + part_codebook * kept
                codes.append(part_codes)
        return semantic_zq, zq, torch.stack(codes, dim=1), commitment.mean(), codebook.mean()


def residual_kept(
    batch: int, residual_codebooks: int, dropout: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Residual codebooks per crop: all of them, or (with probability `dropout`) k uniform in 0..n."""
    dropped = torch.rand(batch, generator=generator) < dropout
    k = torch.randint(0, residual_codebooks + 1, (batch,), generator=generator)
    return torch.where(dropped, k, torch.full_like(k, residual_codebooks)).to(device)


def codebook_perplexity(codes: torch.Tensor, sizes: list[int]) -> list[float]:
    """exp(entropy) of each codebook's code histogram over [B, n, T] codes: the number of equally used entries."""
    out = []
    for i, size in enumerate(sizes):
        p = torch.bincount(codes[:, i].reshape(-1), minlength=size).double()
        p = p / p.sum().clamp_min(1)
        out.append(float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())))
    return out
