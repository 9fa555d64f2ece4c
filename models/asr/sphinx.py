"""Offline English ASR with pocketsphinx 5: the acoustic model, language model and dictionary ship in its wheel."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.checkpoints import CheckpointUnavailableError, package_dir
from models.signal import resample, to_mono
from schemas.config import ModelSpec
from schemas.transcript import RichTranscript, TranscriptionResult, Turn, WordConfidence

_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")
SILENCE_PEAK = 1e-4  # about -80 dBFS: below this everywhere the input is digital silence


def model_root() -> Path:
    """pocketsphinx's model folder, where `pocketsphinx.get_model_path()` finds it for a wheel install, but
    without importing pocketsphinx: the driver checks the files, only the actors load the decoder."""
    if os.environ.get("POCKETSPHINX_PATH"):
        return Path(os.environ["POCKETSPHINX_PATH"])
    root = package_dir("pocketsphinx")
    if root is None:
        raise ImportError("No module named 'pocketsphinx'")
    return root / "model"


def model_files(spec: ModelSpec) -> dict[str, str]:
    """hmm/lm/dict paths: spec.options overrides, else the en-us model in the wheel."""
    base = model_root() / "en-us"
    files = {"hmm": str(base / "en-us"), "lm": str(base / "en-us.lm.bin"), "dict": str(base / "cmudict-en-us.dict")}
    files.update({k: str(spec.options[k]) for k in files if k in spec.options})
    return files


class PocketsphinxTranscriber:
    """Single-speaker transcripts with per-word times and posterior confidences; English only."""

    sample_rate = 16000
    language = "en"
    writes_speaker_turns = False  # one turn; speakers come from diarization

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> PocketsphinxTranscriber:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.model") -> None:
        try:
            files = model_files(spec)
        except ImportError as exc:
            raise CheckpointUnavailableError(
                f"{setting}: pocketsphinx is not installed ({exc}); `pip install pocketsphinx>=5`"
            ) from exc
        absent = [f"{k}={v}" for k, v in files.items() if not Path(v).exists()]
        if absent:
            raise CheckpointUnavailableError(
                f"pocketsphinx model files missing: {', '.join(absent)}; set {setting}.options.hmm/lm/dict to existing paths"
            )

    def __init__(self, spec: ModelSpec):
        from pocketsphinx import Decoder

        self.preflight(spec)
        files = model_files(spec)
        self.decoder = Decoder(loglevel="FATAL", samprate=self.sample_rate, **files)
        self.frame_rate = int(self.decoder.config["frate"])
        self.model_id = "pocketsphinx:" + (
            "en-us" if not any(k in spec.options for k in files) else Path(files["hmm"]).name
        )

    def _decode(self, x: np.ndarray) -> tuple[str, list[WordConfidence]]:
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        # Every utterance as the first of a stream: the decoder adapts its noise and feature statistics across
        # utterances otherwise, so the same audio got another transcript after other utterances (pocketsphinx marks
        # start_stream deprecated, yet it is what resets them: tests/models/test_asr_pocketsphinx.py)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.decoder.start_stream()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        words: list[WordConfidence] = []
        for seg in self.decoder.seg():
            # Fillers (<s>, </s>, <sil>, [NOISE], ++...++) are not words.
            if seg.word[0] in "<[+":
                continue
            words.append(
                WordConfidence(
                    word=_ALT_PRONUNCIATION.sub("", seg.word),
                    confidence=float(min(1.0, max(0.0, seg.prob))),  # lattice posterior, already linear
                    start_s=seg.start_frame / self.frame_rate,
                    end_s=(seg.end_frame + 1) / self.frame_rate,
                )
            )
        return " ".join(w.word for w in words), words

    def transcribe(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None
    ) -> list[TranscriptionResult]:
        results = []
        for x in waveforms:
            if language not in (None, self.language):
                results.append(
                    TranscriptionResult(raw="", error=f"pocketsphinx transcribes English only, asked for {language!r}")
                )
                continue
            x = resample(to_mono(x), sample_rate, self.sample_rate)
            if not np.any(np.abs(x) > SILENCE_PEAK):  # the decoder hallucinates a word on digital silence
                results.append(TranscriptionResult(raw="", error="empty output (digital silence)"))
                continue
            text, words = self._decode(x)
            if not words:
                results.append(TranscriptionResult(raw=text, error="empty output"))
                continue
            transcript = RichTranscript(
                turns=[Turn(speaker=0, text=text, start_s=words[0].start_s, end_s=words[-1].end_s)],
                language=self.language,
                words=words,
                model_id=self.model_id,
            )
            results.append(TranscriptionResult(transcript=transcript, raw=text))
        return results
