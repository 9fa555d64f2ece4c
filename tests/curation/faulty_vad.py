"""A voice activity detector with faults on purpose, named in a config as 'tests.curation.faulty_vad:FaultyVad'
(the registry imports a 'module:Class' name), so that Ray workers build it from the spec like any model.

Frames whose RMS exceeds 0.01 are speech. `options.fail`: 'always' raises RuntimeError on every call (a broken
model); the name of an infrastructure error (e.g. 'ImportError') raises that on every call; an integer N fails, with
ValueError, each waveform whose length in 10 ms steps is a multiple of N (one input in N of a manifest whose inputs
grow by 10 ms each: a model that refuses a few inputs).
"""

from __future__ import annotations

import builtins

import numpy as np

from schemas.config import ModelSpec


class FaultyVad:
    sample_rate = 16000
    frame_s = 0.032
    model_id = "faulty-vad"

    def __init__(self, fail):
        self.fail = fail

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> FaultyVad:
        return cls(spec.options.get("fail"))

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        """Nothing to find: no weights."""

    def speech_probs(self, waveforms, sample_rate: int) -> list[np.ndarray]:
        if self.fail == "always":
            raise RuntimeError("faulty vad: the model is broken")
        if isinstance(self.fail, str):
            raise getattr(builtins, self.fail)("faulty vad: the environment is broken")
        out = []
        for w in waveforms:
            if isinstance(self.fail, int) and (len(w) * 100 // sample_rate) % self.fail == 0:
                raise ValueError(f"faulty vad: refuses a waveform of {len(w)} samples")
            hop = int(self.frame_s * sample_rate)
            frames = np.asarray(w[: len(w) // hop * hop], np.float32).reshape(-1, hop)
            out.append((np.sqrt((frames**2).mean(axis=1)) > 0.01).astype(np.float32))
        return out
