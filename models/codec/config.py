"""The codec's architecture sizes, and their JSON sidecar (`codec.json` beside `codec.pth`). Torch-free.

The defaults are the released S2 codec (fish-speech `configs/modded_dac_vq.yaml`). Two sizes follow the reference's
rules rather than a setting: the encoder transformer has width // 64 heads of `encoder_head_dim` and a feed-forward
width of 3 x width; the quantizer's transformers work at `latent_dim`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

# The reference builds an encoder transformer of block width // ENCODER_HEAD_WIDTH heads, whatever its head size.
ENCODER_HEAD_WIDTH = 64
ENCODER_FFN_RATIO = 3


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int = 44100
    encoder_dim: int = 64
    encoder_rates: tuple[int, ...] = (2, 4, 8, 8)
    encoder_transformer_layers: tuple[int, ...] = (0, 0, 0, 4)
    encoder_window: int = 512
    encoder_head_dim: int = 64
    latent_dim: int = 1024
    decoder_dim: int = 1536
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    downsample_factors: tuple[int, ...] = (2, 2)
    quantizer_layers: int = 8
    quantizer_heads: int = 16
    quantizer_head_dim: int = 64
    quantizer_ffn_dim: int = 3072
    quantizer_window: int = 128
    semantic_codebook_size: int = 4096
    codebook_size: int = 1024
    residual_codebooks: int = 9
    codebook_dim: int = 8
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    random_init: bool = field(default=False, compare=False)  # weights drawn at random, not trained

    def __post_init__(self) -> None:
        problems = []
        if len(self.encoder_transformer_layers) != len(self.encoder_rates):
            problems.append("encoder_transformer_layers needs one entry per encoder rate")
        for width, layers in zip(self.encoder_widths, self.encoder_transformer_layers):
            if layers and width < ENCODER_HEAD_WIDTH:
                problems.append(
                    f"an encoder transformer needs a block width of at least {ENCODER_HEAD_WIDTH} (got {width})"
                )
        if self.quantizer_layers < 1:
            problems.append("quantizer_layers must be at least 1")
        if self.decoder_dim % 2 ** len(self.decoder_rates):
            problems.append(f"decoder_dim {self.decoder_dim} must halve {len(self.decoder_rates)} times")
        if math.prod(self.decoder_rates) != self.hop_length:
            problems.append(
                f"the decoder's rates {self.decoder_rates} must upsample by the encoder's hop {self.hop_length}"
            )
        if problems:
            raise ValueError("codec config: " + "; ".join(problems))

    @classmethod
    def tiny(cls) -> CodecConfig:
        """The released structure (strides, transformers, 1 + 9 codebooks of the released sizes, 21.5 Hz frames) at a
        width that builds in milliseconds: for tests and demos, never for audio."""
        return cls(
            encoder_dim=4,
            encoder_transformer_layers=(0, 0, 0, 1),
            encoder_head_dim=16,
            latent_dim=16,
            decoder_dim=16,
            quantizer_layers=1,
            quantizer_heads=2,
            quantizer_head_dim=8,
            quantizer_ffn_dim=32,
            random_init=True,
        )

    @property
    def encoder_widths(self) -> list[int]:
        return [self.encoder_dim * 2 ** (i + 1) for i in range(len(self.encoder_rates))]

    @property
    def hop_length(self) -> int:
        """Samples per encoder latent."""
        return math.prod(self.encoder_rates)

    @property
    def frame_length(self) -> int:
        """Samples per code frame."""
        return self.hop_length * math.prod(self.downsample_factors)

    @property
    def num_codebooks(self) -> int:
        return 1 + self.residual_codebooks

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.semantic_codebook_size] + [self.codebook_size] * self.residual_codebooks

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CodecConfig:
        """Fields absent from the JSON keep the released value; unknown fields and wrong types are errors."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("codec config: expected a JSON object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"codec config: unknown fields {unknown}")
        return cls(**{name: _typed(name, value, type(fields[name].default)) for name, value in data.items()})


def _typed(name: str, value: object, kind: type) -> object:
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"codec config: {name} must be a list of integers, got {value!r}")
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"codec config: {name} must be {kind.__name__}, got {value!r}")
    return value
