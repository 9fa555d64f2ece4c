"""Generation: the slow AR picks each frame's semantic token, the fast AR its N-1 acoustic codes.

Per step, as the reference: slow logits restricted to the semantic range and <|im_end|>; a sample at the
given settings and a second one at the RAS settings (both always drawn, so each item's random stream is the
reference's); from the second step on, RAS takes the second sample when the first is a semantic token among the
last `ras_window` tokens sampled since that second step (the reference's window never holds the first token);
then the fast AR: [project(h), emb(c_0)] at depth 0-1, then emb(c_{k-1}) at depth k, each c_k sampled with the
same settings. A frame whose token is <|im_end|> ends its item and is not returned.

Only what can be drawn is computed: the slow AR's logits are those of the allowed slice of the LM head (the
semantic tokens the codec decodes and <|im_end|>: 4,097 rows of S2-Pro's 155,776), each codebook's those below its
size. `codebook_sizes` restricts every draw to the codes a codec can decode: the fast AR has `codebook_size` outputs
for every codebook while the S2 codec's acoustic codebooks have 1,024 entries (its semantic one 4,096); the rest
renormalise, not clamped. The random stream (models.dual_ar.sampling): `noise="reference"` draws one uniform per
vocabulary or codebook entry per draw from a generator per item, as the reference does (the same seed, its tokens;
with or without codebook_sizes); `noise="counter"` hashes the uniforms of the top-k candidates alone, for all
items at once (GRPO's rollouts: no per-item loop anywhere in a step).

Batches are left-padded: every item's last prompt token sits in the same cache slot, padding slots are masked
out, and positions count from each item's own first token, so an item generates exactly what it would alone.
The slow KV cache is preallocated for prompt + max_new_tokens slots; the fast AR's holds the N depth positions
and is overwritten every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from models.dual_ar.attention import CacheMask
from models.dual_ar.model import DualARTransformer
from models.dual_ar.sampling import CounterNoise, SamplingParams, TorchNoise, candidates, draw, repetition_aware


def _fast_frame(
    model: DualARTransformer,
    hidden: Tensor,
    token: Tensor,
    sampling: SamplingParams,
    noise: TorchNoise | CounterNoise,
    caches,
    sizes: Sequence[int],
) -> Tensor:
    """Codes [B, N] of one frame: c_0 from the semantic token, c_1..c_{N-1} sampled from the fast AR, each
    below its codebook's size."""
    c = model.config
    codes = [(token - c.semantic_begin_id).clamp(0, c.codebook_size - 1)]
    x = torch.cat([model.fast_project_in(hidden)[:, None], model.fast_embeddings(codes[0])[:, None]], dim=1)
    depth = 0
    for k in range(1, c.num_codebooks):
        logits = model.fast_step(x, depth, caches)[:, -1, : sizes[k]]
        depth += x.shape[1]
        probs, columns = candidates(logits, sampling.temperature, sampling.top_p, sampling.top_k)
        codes.append(draw(probs, columns, noise, c.codebook_size))
        x = model.fast_embeddings(codes[-1])[:, None]
    return torch.stack(codes, dim=1)


@torch.inference_mode()
def generate(
    model: DualARTransformer,
    prompts: Sequence[Tensor],
    *,
    im_end_id: int,
    max_new_tokens: int = 2048,
    sampling: SamplingParams = SamplingParams(),
    seed: int | Sequence[int] = 0,
    codebook_sizes: Sequence[int] | None = None,
    noise: Literal["reference", "counter"] = "reference",
) -> list[Tensor]:
    """Codes [N, T_i] (long, on CPU) for each prompt (rows [N+1, T_i], e.g. models.dual_ar.prompt.build_prompt),
    ending before <|im_end|> or after max_new_tokens frames. Item i draws from a generator seeded with seed[i]
    (an int seed means seed + i): the same prompt and seed give the same codes whatever the batch.
    codebook_sizes: entries of each of the N codebooks that codes may take (a codec's `codebook_sizes`);
    None = codebook_size for every codebook. noise: the random stream (module docstring)."""
    c = model.config
    N, device = c.num_codebooks, model.fast_output.weight.device
    sizes = [c.codebook_size] * N if codebook_sizes is None else list(codebook_sizes)
    if len(sizes) != N or not all(1 <= s <= c.codebook_size for s in sizes):
        raise ValueError(f"codebook_sizes must be {N} sizes in 1..{c.codebook_size}; got {sizes}")
    seeds = [seed + i for i in range(len(prompts))] if isinstance(seed, int) else list(seed)
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    bad = [tuple(p.shape) for p in prompts if p.ndim != 2 or p.shape[0] != N + 1]
    if bad:
        raise ValueError(f"prompts must be rows [{N + 1}, T]; got {bad[0]}")
    if noise not in ("reference", "counter"):
        raise ValueError(f"noise must be 'reference' or 'counter', got {noise!r}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    lengths = torch.tensor([p.shape[1] for p in prompts], device=device)
    B, T0 = len(prompts), int(lengths.max())
    steps = min(max_new_tokens, c.max_seq_len - T0)
    if steps <= 0:
        raise ValueError(f"a prompt of {T0} tokens leaves no room to generate under max_seq_len {c.max_seq_len}")

    rows = torch.zeros(B, N + 1, T0, dtype=torch.long, device=device)
    valid = torch.zeros(B, T0 + steps, dtype=torch.bool, device=device)
    for i, p in enumerate(prompts):
        rows[i, :, T0 - p.shape[1] :] = p.to(device)
        valid[i, T0 - p.shape[1] : T0] = True
    pad = (T0 - lengths)[:, None]
    positions = (torch.arange(T0, device=device) - pad).clamp(min=0)
    caches = model.new_caches(B, T0 + steps)
    fast_caches = model.new_caches(B, N, fast=True)
    stream = (TorchNoise if noise == "reference" else CounterNoise)(seeds, device)
    allowed = torch.cat(  # the slow AR's drawable tokens: the codec's semantic codes, then <|im_end|>
        [
            torch.arange(c.semantic_begin_id, c.semantic_begin_id + sizes[0], device=device),
            torch.tensor([im_end_id], device=device),
        ]
    )
    head = model.lm_head_weight[allowed]

    hidden = model.slow_step(rows, positions, CacheMask(valid, 0, T0), caches, 0)[:, -1]
    window = torch.full((B, sampling.ras_window), -1, dtype=torch.long, device=device)
    frames = torch.zeros(B, N, steps, dtype=torch.long, device=device)
    n_frames = torch.full((B,), steps, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for step in range(steps):
        logits = F.linear(hidden, head)
        token, fallback = (
            draw(probs, allowed[columns], stream, c.vocab_size)
            for probs, columns in (
                candidates(logits, sampling.temperature, sampling.top_p, sampling.top_k),
                candidates(logits, sampling.ras_temperature, sampling.ras_top_p, sampling.top_k),
            )
        )
        if step > 0 and sampling.ras_window:
            token = repetition_aware(token, fallback, window, model.is_semantic(token))
            window = torch.cat([window[:, 1:], token[:, None]], dim=1)
        codes = _fast_frame(model, hidden, token, sampling, stream, fast_caches, sizes)
        ended = (token == im_end_id) & ~done
        n_frames[ended] = step
        done |= ended
        frames[:, :, step] = codes
        if bool(done.all()) or step == steps - 1:
            break
        slot = T0 + step
        valid[:, slot] = True
        step_rows = torch.cat([token[:, None], codes], dim=1)[:, :, None]
        hidden = model.slow_step(step_rows, (lengths + step)[:, None], CacheMask(valid, slot, 1), caches, slot)[:, -1]
    return [frames[i, :, : int(n_frames[i])].cpu() for i in range(B)]
