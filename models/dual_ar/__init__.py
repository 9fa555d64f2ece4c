"""The Fish Audio S2 Dual-AR text-to-speech model: our implementation, loading the released S2-Pro checkpoint.

  S2DualAR             the wrapper: `from_spec(spec)`, `preflight(spec, setting)`, `synthesize(texts, references)`
  DualARTransformer    the network (models.dual_ar.model): `forward` over packed rows for training, cached steps
                       for generation
  from_s2_checkpoint, save_s2_checkpoint   the released format (models.dual_ar.checkpoint)
  from_qwen3           a model started from a transformers Qwen3 checkpoint (models.dual_ar.qwen3)
  build_prompt, Reference, EncodedPrompt   the prompt layout for inference and training (models.dual_ar.prompt)
  generate, SamplingParams                 batched generation with KV caches (models.dual_ar.generate)
  init_tiny            a tiny random-init checkpoint for tests and demos (models.dual_ar.tiny)

The codebook-embedding scale. The reference divides the fused input of audio positions (Eq. 1) by sqrt(N+1) when
it generates from a released checkpoint, but not in its training forward: a model trained there sees inputs at
another scale than it is run with. Here one config field, `codebook_embedding_scale`, multiplies that input in
training and in generation alike. It defaults to 1/sqrt(N+1), what the released checkpoints are run with (so
generation matches the reference's, and fine-tuning them trains on the inputs they will be run with); a sum of
N+1 roughly independent embeddings is sqrt(N+1) times larger than one, so the scaled fusion also keeps audio
inputs at the scale of the text embeddings a Qwen3 backbone was trained on, which is why from_qwen3 and
init_tiny use it too. Set it to 1.0 to reproduce the reference's training forward.

The wrapper and the configuration import no torch; the rest is imported on first use.
"""

from __future__ import annotations

import importlib

from models.dual_ar.synthesizer import S2DualAR
from models.dual_ar.weights import preflight

_LAZY = {
    "DualARConfig": "models.dual_ar.config",
    "DualARTransformer": "models.dual_ar.model",
    "DualAROutput": "models.dual_ar.model",
    "from_s2_checkpoint": "models.dual_ar.checkpoint",
    "save_s2_checkpoint": "models.dual_ar.checkpoint",
    "from_qwen3": "models.dual_ar.qwen3",
    "build_prompt": "models.dual_ar.prompt",
    "Reference": "models.dual_ar.prompt",
    "EncodedPrompt": "models.dual_ar.prompt",
    "generate": "models.dual_ar.generate",
    "SamplingParams": "models.dual_ar.sampling",
    "TokenIds": "models.dual_ar.tokens",
    "init_tiny": "models.dual_ar.tiny",
}

__all__ = ["S2DualAR", "preflight", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
