"""Rich transcription with the Qwen3-Omni thinker on vLLM: the `s2` profile's transcriber at cluster throughput.

The same prompt (`qwen3_omni.vllm_prompt`: vLLM expands its one audio placeholder to the audio's tokens itself) and
the same parsing (`qwen3_omni.parse_output`) as the transformers wrapper, so the two give the same transcripts for
the same model outputs; greedy decoding, `max_new_tokens` as there. vLLM batches and schedules the requests of a
call itself (continuous batching, paged KV cache), so one call per Ray Data batch keeps the GPU busy.

spec.options as for 'qwen3-omni' (prompt, system, max_new_tokens, implicit_speaker), plus `gpu_memory_utilization`
(default 0.85), `max_model_len` (default 8192) and `tensor_parallel_size` (default 1). vLLM is an optional
dependency (`pip install .[vllm]`, GPU machines): importing this module does not need it; building the model does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.asr.qwen3_omni import DEFAULT_CHECKPOINT, DEFAULT_MAX_NEW_TOKENS, parse_output, vllm_prompt
from models.checkpoints import CheckpointUnavailableError, check_hf_checkpoint, package_dir, resolve_hf_checkpoint
from models.signal import resample, to_mono
from schemas.config import ModelSpec
from schemas.transcript import TranscriptionResult

SAMPLE_RATE = 16000  # the Whisper feature extractor's rate


def requests(
    waveforms: Sequence[np.ndarray], sample_rate: int, options: dict, language: str | None = None
) -> list[dict]:
    """vLLM's request for each waveform: the prompt text and the 16 kHz mono audio it refers to."""
    prompt = vllm_prompt(options, language)
    return [
        {"prompt": prompt, "multi_modal_data": {"audio": (resample(to_mono(w), sample_rate, SAMPLE_RATE), SAMPLE_RATE)}}
        for w in waveforms
    ]


def results(
    outputs, model_id: str, max_new_tokens: int, language: str | None = None, implicit_speaker: bool = True
) -> list[TranscriptionResult]:
    """vLLM's RequestOutputs -> results, as the transformers wrapper parses its own generations: an output that ran to
    `max_new_tokens` without a stop token is a runaway generation."""
    out = []
    for o in outputs:
        completion = o.outputs[0]
        truncated = completion.finish_reason == "length" and len(completion.token_ids) >= max_new_tokens
        out.append(
            parse_output(completion.text, model_id, language, implicit_speaker=implicit_speaker, truncated=truncated)
        )
    return out


class Qwen3OmniVllmTranscriber:
    sample_rate = SAMPLE_RATE
    writes_speaker_turns = True

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Qwen3OmniVllmTranscriber:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.model") -> None:
        if package_dir("vllm") is None:
            raise CheckpointUnavailableError(
                f"{setting}.name=qwen3-omni-vllm needs vLLM (`pip install .[vllm]` on the GPU nodes); or use name=qwen3-omni"
            )
        check_hf_checkpoint(spec.checkpoint or DEFAULT_CHECKPOINT, "Qwen3-Omni transcriber (vLLM)", setting)

    def __init__(self, spec: ModelSpec):
        from vllm import LLM, SamplingParams

        checkpoint = spec.checkpoint or DEFAULT_CHECKPOINT
        path = resolve_hf_checkpoint(checkpoint, "Qwen3-Omni transcriber (vLLM)", "transcription.model.checkpoint")
        self.model_id = f"qwen3-omni:{checkpoint}"  # the same model as the transformers wrapper's: same outputs
        self.spec = spec
        options = spec.options
        self.max_new_tokens = int(options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        self.implicit_speaker = bool(options.get("implicit_speaker", True))
        self.llm = LLM(
            model=path,
            dtype=spec.dtype if spec.dtype != "float32" else "auto",
            max_model_len=int(options.get("max_model_len", 8192)),
            gpu_memory_utilization=float(options.get("gpu_memory_utilization", 0.85)),
            tensor_parallel_size=int(options.get("tensor_parallel_size", 1)),
            max_num_seqs=max(spec.batch_size, 1),
            limit_mm_per_prompt={"audio": 1, "image": 0, "video": 0},
            seed=0,
        )
        self.params = SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens)

    def transcribe(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None
    ) -> list[TranscriptionResult]:
        outputs = self.llm.generate(
            requests(waveforms, sample_rate, self.spec.options, language), self.params, use_tqdm=False
        )
        return results(outputs, self.model_id, self.max_new_tokens, language, self.implicit_speaker)
