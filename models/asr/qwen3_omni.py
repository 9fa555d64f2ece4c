"""Rich transcription with the Qwen3-Omni thinker (the `s2` profile), prompted for speaker turns and vocal tags.

The prompt is laid out in Qwen's chat format by hand rather than through `Qwen3OmniMoeProcessor`, which
also needs the image and video processors: only the tokenizer and the Whisper feature extractor of the
checkpoint are used. The same wrapper scores given transcripts (`teacher_forced_logprobs`), which is the
intelligibility reward of the RL loop.

Batch inference with vLLM (Ray Data's `vLLMEngineProcessorConfig`) needs none of this class: build each
request from `vllm_prompt(options)` plus the 16 kHz waveform as the audio item, and turn the generated
text into a result with `parse_output`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.checkpoints import check_hf_checkpoint, pick_device, pick_dtype, resolve_hf_checkpoint
from models.signal import resample, to_mono
from schemas.config import ModelSpec
from schemas.transcript import RichTranscript, TranscriptionResult, TranscriptParseError

if TYPE_CHECKING:
    import torch

DEFAULT_CHECKPOINT = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
DEFAULT_PROMPT = (
    "Transcribe this audio verbatim. Start every speaker turn with <|speaker:N|>, numbering speakers 0, 1, 2, ... "
    "in order of first appearance. Write non-verbal vocal events and speaking styles inline in square brackets "
    "where they happen, for example [laugh], [inhale], [exhale], [sigh], [cough], [clears throat], [whispers], "
    "[emphasis], [in a hurry], [shouting]. Output only the annotated transcript."
)
# The language comes from the model itself: asked to name it first, as a marker parse_output takes off the transcript.
LANGUAGE_REQUEST = (
    " Begin the output with the language of the speech as <|language:xx|>, where xx is its ISO 639-1 code "
    "(for example <|language:en|>, <|language:zh|>)."
)
_LANGUAGE_MARKER = re.compile(r"^\s*<\|\s*lang(?:uage)?\s*:\s*([^|<>]*?)\s*\|>")
# names a model may write instead of the code
_LANGUAGE_NAMES = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "cantonese": "yue", "japanese": "ja", "korean": "ko",
    "german": "de", "french": "fr", "spanish": "es", "portuguese": "pt", "italian": "it", "russian": "ru",
    "arabic": "ar", "hindi": "hi", "dutch": "nl", "turkish": "tr", "vietnamese": "vi", "thai": "th",
    "indonesian": "id", "polish": "pl", "swedish": "sv", "ukrainian": "uk",
}  # fmt: skip
DEFAULT_MAX_NEW_TOKENS = 512
AUDIO_START, AUDIO_PAD, AUDIO_END = "<|audio_start|>", "<|audio_pad|>", "<|audio_end|>"


def audio_token_count(n_frames: int, n_window: int) -> int:
    """Audio tokens the encoder yields for `n_frames` mel frames: chunks of 2*n_window frames give 13
    tokens each (three stride-2 convolutions), the remainder is downsampled the same way."""
    chunk = n_window * 2
    rest = n_frames % chunk
    after_first = (rest - 1) // 2 + 1
    return ((after_first - 1) // 2 + 1 - 1) // 2 + 1 + (n_frames // chunk) * 13


def chat_text(prompt: str, n_audio_tokens: int, system: str | None = None) -> str:
    """The user turn (audio, then the instruction) and an open assistant turn, in Qwen's chat format."""
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    audio = AUDIO_START + AUDIO_PAD * n_audio_tokens + AUDIO_END
    return f"{head}<|im_start|>user\n{audio}{prompt}<|im_end|>\n<|im_start|>assistant\n"


def instruction(options: dict, language: str | None = None, generate: bool = False) -> str:
    """The user prompt. For generation it asks the model to name the language first (options.detect_language,
    default: only with the default prompt); teacher-forced scoring of a given transcript does not."""
    prompt = options.get("prompt", DEFAULT_PROMPT)
    ask = generate and bool(options.get("detect_language", "prompt" not in options))
    return (
        prompt + (LANGUAGE_REQUEST if ask else "") + (f" The speech is in language '{language}'." if language else "")
    )


def vllm_prompt(options: dict, language: str | None = None) -> str:
    """Prompt for vLLM, which expands the single audio placeholder itself."""
    return chat_text(instruction(options, language, generate=True), 1, options.get("system"))


def split_language(raw: str) -> tuple[str | None, str]:
    """(ISO 639-1 code or None, the rest) of a generation that may begin with <|language:xx|>."""
    m = _LANGUAGE_MARKER.match(raw)
    if m is None:
        return None, raw
    name = m.group(1).strip().lower()
    code = _LANGUAGE_NAMES.get(name, name.split("-")[0].split("_")[0])
    return (code if re.fullmatch(r"[a-z]{2,3}", code) else None), raw[m.end() :]


def parse_output(
    raw: str, model_id: str, language: str | None = None, *, implicit_speaker: bool = True, truncated: bool = False
) -> TranscriptionResult:
    """Generated text -> result; malformed text becomes an error, never an exception. A leading <|language:xx|>
    marker is the model's own language (the transcript's `language`, over the requested one)."""
    if truncated:
        return TranscriptionResult(raw=raw, error="output truncated at max_new_tokens (runaway generation)")
    detected, text = split_language(raw)
    if not text.strip():
        return TranscriptionResult(raw=raw, error="empty output")
    try:
        transcript = RichTranscript.from_inline(
            text.strip(), model_id, implicit_speaker=implicit_speaker, language=detected or language
        )
    except TranscriptParseError as exc:
        return TranscriptionResult(raw=raw, error=str(exc))
    return TranscriptionResult(transcript=transcript, raw=raw)


def _is_omni_composite(path: str) -> bool:
    """A full Qwen3-Omni checkpoint (thinker + talker) rather than a thinker-only folder."""
    config = json.loads((Path(path) / "config.json").read_text())
    return config.get("model_type") == "qwen3_omni_moe"


class Qwen3OmniTranscriber:
    """spec.options: prompt, system, max_new_tokens, implicit_speaker (plain text = one speaker; default True)."""

    sample_rate = 16000
    writes_speaker_turns = True

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Qwen3OmniTranscriber:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.model") -> None:
        check_hf_checkpoint(spec.checkpoint or DEFAULT_CHECKPOINT, "Qwen3-Omni transcriber", setting)

    def __init__(self, spec: ModelSpec):
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        checkpoint = spec.checkpoint or DEFAULT_CHECKPOINT
        path = resolve_hf_checkpoint(checkpoint, "Qwen3-Omni transcriber", "transcription.model.checkpoint")
        self.model_id = f"qwen3-omni:{checkpoint}"
        self.spec = spec
        self.device = pick_device(spec.device)
        # weights go straight to the device (accelerate): a 30B model never sits whole in CPU memory
        load = {"dtype": pick_dtype(spec.dtype, self.device), "device_map": str(self.device)}
        if _is_omni_composite(path):
            from transformers import Qwen3OmniMoeForConditionalGeneration

            # Loading without the talker: only the thinker produces text.
            self.model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(
                path, enable_audio_output=False, **load
            ).thinker
        else:
            from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

            self.model = Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(path, **load)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.features = WhisperFeatureExtractor.from_pretrained(path)
        self.n_window = self.model.config.audio_config.n_window
        self.max_new_tokens = int(spec.options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        self.implicit_speaker = bool(spec.options.get("implicit_speaker", True))
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.stop_ids = {
            self.tokenizer.convert_tokens_to_ids(t)
            for t in ("<|im_end|>", "<|endoftext|>")
            if t in self.tokenizer.get_vocab()
        }
        if self.tokenizer.eos_token_id is not None:
            self.stop_ids.add(self.tokenizer.eos_token_id)

    def _inputs(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None, generate: bool = False
    ) -> tuple[list[list[int]], dict]:
        """Prompt ids per item (audio placeholders sized to the audio) and the batched mel features."""
        audio = [resample(to_mono(x), sample_rate, self.sample_rate) for x in waveforms]
        feats = self.features(
            audio,
            sampling_rate=self.sample_rate,
            padding=True,
            truncation=False,
            return_attention_mask=True,
            return_tensors="pt",
        )
        prompt = instruction(self.spec.options, language, generate)
        ids = [
            self.tokenizer(
                chat_text(prompt, audio_token_count(int(n), self.n_window), self.spec.options.get("system")),
                add_special_tokens=False,
            )["input_ids"]
            for n in feats["attention_mask"].sum(-1).tolist()
        ]
        dtype = next(self.model.parameters()).dtype
        return ids, {
            "input_features": feats["input_features"].to(self.device, dtype),
            "feature_attention_mask": feats["attention_mask"].to(self.device),
        }

    def _pad(self, seqs: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(map(len, seqs))
        ids = [[self.pad_id] * (width - len(s)) + s if left else s + [self.pad_id] * (width - len(s)) for s in seqs]
        mask = [[0] * (width - len(s)) + [1] * len(s) if left else [1] * len(s) + [0] * (width - len(s)) for s in seqs]
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device)

    def _generate(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None
    ) -> list[TranscriptionResult]:
        import torch

        prompts, audio_inputs = self._inputs(waveforms, sample_rate, language, generate=True)
        input_ids, attention_mask = self._pad(prompts, left=True)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                **audio_inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.pad_id,
                eos_token_id=sorted(self.stop_ids),
            )
        results = []
        for row in out[:, input_ids.shape[1] :].tolist():
            stopped = [i for i, t in enumerate(row) if t in self.stop_ids]
            body = row[: stopped[0]] if stopped else row
            raw = self.tokenizer.decode(body, skip_special_tokens=True)
            results.append(
                parse_output(
                    raw,
                    self.model_id,
                    language,
                    implicit_speaker=self.implicit_speaker,
                    truncated=not stopped and len(row) >= self.max_new_tokens,
                )
            )
        return results

    def transcribe(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None
    ) -> list[TranscriptionResult]:
        results: list[TranscriptionResult] = []
        for k in range(0, len(waveforms), self.spec.batch_size):
            results.extend(self._generate(waveforms[k : k + self.spec.batch_size], sample_rate, language))
        return results

    def teacher_forced_logprobs(
        self,
        waveforms: Sequence[np.ndarray],
        sample_rate: int,
        transcripts: Sequence[str | RichTranscript],
        language: str | None = None,
    ) -> list[np.ndarray]:
        """Log-probability of each token of each given transcript (inline text) under the model, given its audio."""
        import torch

        scores: list[np.ndarray] = []
        for k in range(0, len(waveforms), self.spec.batch_size):
            chunk = slice(k, k + self.spec.batch_size)
            prompts, audio_inputs = self._inputs(waveforms[chunk], sample_rate, language)
            targets = [
                self.tokenizer(t.render() if isinstance(t, RichTranscript) else t, add_special_tokens=False)[
                    "input_ids"
                ]
                for t in transcripts[chunk]
            ]
            input_ids, attention_mask = self._pad([p + t for p, t in zip(prompts, targets)], left=False)
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **audio_inputs).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                for row, (p, t) in enumerate(zip(prompts, targets)):
                    # The token at position i is predicted by the logits at i - 1.
                    pos = torch.arange(len(p) - 1, len(p) + len(t) - 1, device=logp.device)
                    tok = torch.tensor(t, device=logp.device, dtype=torch.long)
                    scores.append(logp[row, pos, tok].cpu().numpy())
        return scores
