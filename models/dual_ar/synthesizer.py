"""`S2DualAR`: text (with speaker and vocal tags, and optionally reference voices) to S2 codec codes.

Built from a ModelSpec (name 's2-dual-ar', checkpoint = a released-format folder or a hub id in the local cache,
device, dtype, batch size, options). Torch is imported when the model is built, not with this module, so
`S2DualAR.preflight` can check the folder in a process that must stay without torch.

spec.options: temperature, top_p, top_k (default 0.8, 0.8, 30: the reference API's), max_new_tokens (2048),
seed (0), attention ('sdpa' or 'flex').
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.dual_ar import weights
from schemas.config import ModelSpec

NAME = "s2-dual-ar"
OPTIONS = {"temperature", "top_p", "top_k", "max_new_tokens", "seed", "attention"}


class S2DualAR:
    """Item i of a call draws from a generator seeded `seed + i`: the same texts and seed give the same codes,
    whatever the batch size."""

    def __init__(self, spec: ModelSpec, setting: str = "model"):
        from models.checkpoints import pick_device, pick_dtype
        from models.dual_ar.checkpoint import from_s2_checkpoint
        from models.dual_ar.sampling import SamplingParams
        from models.dual_ar.tokens import TokenIds

        unknown = sorted(set(spec.options) - OPTIONS)
        if spec.name != NAME or unknown:
            raise ValueError(
                f"{setting}: unknown {'options ' + ', '.join(unknown) if unknown else f'model {spec.name!r}'}; known: {NAME} with options {', '.join(sorted(OPTIONS))}"
            )
        folder = weights.checkpoint_dir(spec, setting)
        options = dict(spec.options)
        self.device = pick_device(spec.device)
        self.model, self.tokenizer = from_s2_checkpoint(
            folder,
            device=self.device,
            dtype=pick_dtype(spec.dtype, self.device),
            attention=options.pop("attention", "sdpa"),
        )
        config = self.model.config
        self.ids = TokenIds.from_tokenizer(self.tokenizer, config.codebook_size)
        self.random_init = config.random_init
        self.num_codebooks = config.num_codebooks
        label = folder.name if Path(spec.checkpoint).expanduser().exists() else spec.checkpoint  # else a hub id
        self.model_id = f"{NAME}:{label}" + ("+random-init" if self.random_init else "")
        self.batch_size = spec.batch_size
        self.max_new_tokens = int(options.pop("max_new_tokens", 2048))
        self.seed = int(options.pop("seed", 0))
        self.sampling = SamplingParams(**options)

    @classmethod
    def from_spec(cls, spec: ModelSpec, setting: str = "model") -> S2DualAR:
        return cls(spec, setting)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "model") -> None:
        """Raise CheckpointUnavailableError (naming `setting`.checkpoint) unless the folder is complete; no torch."""
        weights.preflight(spec, setting)

    def prompt(self, text: str, references: Sequence = ()):
        """The inference prompt rows (models.dual_ar.prompt.EncodedPrompt) for one text."""
        from models.dual_ar.prompt import build_prompt

        return build_prompt(self.tokenizer, self.ids, self.num_codebooks, text, references)

    def synthesize(
        self,
        texts: Sequence[str],
        references: Sequence[Sequence] | None = None,
        seed: int | None = None,
        codebook_sizes: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """Codes [num_codebooks, T] int16 per text. references[i]: the models.dual_ar.prompt.Reference voices of
        text i (empty: none). seed: default spec.options.seed. codebook_sizes: the codec's, so that every code drawn
        is one it can decode (the fast AR's table is as wide as the semantic codebook)."""
        from models.dual_ar.generate import generate

        references = references if references is not None else [()] * len(texts)
        if len(references) != len(texts):
            raise ValueError(f"{len(references)} reference lists for {len(texts)} texts")
        seed = self.seed if seed is None else seed
        codes: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            prompts = [
                self.prompt(t, r).tokens
                for t, r in zip(texts[start : start + self.batch_size], references[start : start + self.batch_size])
            ]
            seeds = [seed + start + i for i in range(len(prompts))]
            out = generate(
                self.model,
                prompts,
                im_end_id=self.ids.im_end,
                max_new_tokens=self.max_new_tokens,
                sampling=self.sampling,
                seed=seeds,
                codebook_sizes=codebook_sizes,
            )
            codes += [c.numpy().astype(np.int16) for c in out]
        return codes
