"""Model FLOPs of a Dual-AR training step, both ARs counted, and the peak they are compared with (MFU).

Counted as the work the trainer asks for (a multiply-add = 2 FLOPs; training = 3 x forward: the forward, and the
backward's gradients of activations and of weights):

- slow AR, per real (non-padding) token: the matmuls of every layer (wqkv, wo, w1, w2, w3); attention scores and
  their weighted sum over the keys it sees: causal within its own sample, so a sample of L tokens costs
  sum_i i = L(L+1)/2 query-key pairs per layer and head;
- LM head: only on learned positions (the trainer computes no logits elsewhere);
- fast AR, per learned frame (the frames whose semantic label is learned): N depth positions through its layers,
  causal attention over N positions, fast_project_in when the widths differ, and fast_output at every position.

Not counted: embeddings (lookups), norms, activations, softmax, recomputation by activation checkpointing, padding.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from models.dual_ar.config import DualARConfig, StackConfig

# bf16 dense peaks of one device in FLOP/s (vendor data sheets; SXM parts)
GPU_PEAKS = {
    "H200": 989.4e12,
    "H100": 989.4e12,
    "A100": 312e12,
    "L40S": 362.05e12,
    "A10G": 70e12,
    "L4": 121e12,
}


def _block_matmul(s: StackConfig) -> int:
    """Forward FLOPs of one block's matmuls for one position."""
    q, kv = s.n_head * s.head_dim, s.n_local_heads * s.head_dim
    return 2 * (s.dim * (q + 2 * kv) + q * s.dim + 3 * s.dim * s.intermediate_size)


def _attention_pairs(s: StackConfig) -> int:
    """Forward FLOPs per (query, key) pair of one layer: q.k and the weighted sum of v, every head."""
    return 2 * 2 * s.n_head * s.head_dim


def step_flops(config: DualARConfig, segment_lengths: list[int], learned_tokens: int, learned_frames: int) -> float:
    """Training FLOPs of a batch whose samples have `segment_lengths` tokens, `learned_tokens` positions in the
    slow loss and `learned_frames` frames through the fast AR."""
    slow, fast, N = config.slow, config.fast, config.num_codebooks
    tokens = sum(segment_lengths)
    pairs = sum(L * (L + 1) // 2 for L in segment_lengths)
    forward = slow.n_layer * (tokens * _block_matmul(slow) + pairs * _attention_pairs(slow))
    forward += learned_tokens * 2 * slow.dim * config.vocab_size
    per_frame = fast.n_layer * (N * _block_matmul(fast) + N * (N + 1) // 2 * _attention_pairs(fast))
    per_frame += N * 2 * fast.dim * config.codebook_size
    if fast.dim != slow.dim:
        per_frame += 2 * slow.dim * fast.dim
    forward += learned_frames * per_frame
    return 3.0 * forward


def segment_lengths(segment_ids: Tensor, pad_segment: int = 0) -> list[int]:
    """Token counts of every sample in packed rows [B, S] (padding excluded)."""
    lengths: list[int] = []
    for row in segment_ids.cpu():
        values, counts = torch.unique_consecutive(row, return_counts=True)
        lengths += [int(c) for v, c in zip(values, counts) if int(v) != pad_segment]
    return lengths


def peak_flops(device: torch.device, dtype: torch.dtype, override_tflops: float | None = None) -> tuple[float, str]:
    """(peak FLOP/s of one device, where the figure comes from)."""
    if override_tflops is not None:
        return override_tflops * 1e12, "runtime.peak_tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in GPU_PEAKS.items():
            if key in name:
                factor = 1.0 if dtype == torch.bfloat16 else 0.5  # TF32 tensor cores run float32 at half rate
                return peak * factor, f"{name} data sheet ({'bf16' if factor == 1.0 else 'tf32'} dense)"
        raise ValueError(f"unknown peak of {name}: set runtime.peak_tflops")
    return measured_matmul_flops(), "measured float32 matmul rate of this CPU"


def measured_matmul_flops(seconds: float = 0.3, n: int = 512) -> float:
    """FLOP/s of repeated n x n float32 matmuls on the CPU: the best this process gets, with its threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - start)
