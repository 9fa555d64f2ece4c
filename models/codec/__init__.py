"""The S2 audio codec (Fish Audio S2's tokenizer): our implementation, loading the released `codec.pth`.

44.1 kHz mono in, 10 codebooks at 44100 / 2048 = 21.5 frames per second out (row 0 semantic, 4096 entries; rows
1-9 acoustic, 1024 entries), and back. Every layer is causal.

  S2Codec       the wrapper: `from_spec(spec)`, `preflight(spec)`, `encode(waveforms, sample_rate)`, `decode(codes)`
  CodecConfig   architecture sizes (default: the released codec), stored as the `codec.json` sidecar
  load_codec, save_codec, random_codec   the network from / to the released format (models.codec.checkpoint)

The wrapper and the config import no torch; the rest is imported on first use.
"""

from __future__ import annotations

import importlib

from models.codec.config import CodecConfig
from models.codec.wrapper import S2Codec

_LAZY = {
    "load_codec": "models.codec.checkpoint",
    "save_codec": "models.codec.checkpoint",
    "random_codec": "models.codec.checkpoint",
    "S2CodecModel": "models.codec.model",
}

__all__ = ["CodecConfig", "S2Codec", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
