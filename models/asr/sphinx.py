"""Offline English ASR with pocketsphinx 5: the acoustic model, language model and dictionary ship in its wheel."""

from __future__ import annotations

import math
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
_SILENCES = ("<s>", "</s>", "<sil>")
LN_FLOOR = -745.0  # the Python binding gives exp(score): a product that underflowed counts as this log
_WORD_CHARS = re.compile(r"[^a-z']+")
# Search settings a spec may set in its options (pocketsphinx's own names and types): beams are probabilities
# relative to the best path (smaller keeps more), max*pf caps on active HMMs/words per frame (-1: no cap), `ds` the
# frame downsampling, `fwdflat`/`bestpath` the second and third passes, `pl_window` the phone-loop lookahead.
_PROBABILITY, _COUNT, _SWITCH, _WEIGHT = "a probability in (0, 1]", "an integer", "true or false", "a positive number"
SEARCH_SETTINGS = {
    **dict.fromkeys(("beam", "wbeam", "pbeam", "lpbeam", "lponlybeam", "fwdflatbeam", "fwdflatwbeam"), _PROBABILITY),
    **dict.fromkeys(("maxhmmpf", "maxwpf", "topn", "ds", "pl_window"), _COUNT),
    **dict.fromkeys(("fwdflat", "bestpath"), _SWITCH),
    "lw": _WEIGHT,
}


def model_root() -> Path:
    """pocketsphinx's model folder, where `pocketsphinx.get_model_path()` finds it for a wheel install, but
    without importing pocketsphinx: the driver checks the files, only the actors load the decoder."""
    if os.environ.get("POCKETSPHINX_PATH"):
        return Path(os.environ["POCKETSPHINX_PATH"])
    root = package_dir("pocketsphinx")
    if root is None:
        raise ImportError("No module named 'pocketsphinx'")
    return root / "model"


def search_settings(spec: ModelSpec, setting: str = "transcription.model") -> dict[str, float | int | bool]:
    """The decoder's search settings given in spec.options (pocketsphinx's defaults otherwise); any other option than
    these and the model files is an error naming it."""
    out = {}
    for key, value in spec.options.items():
        if key in ("hmm", "lm", "dict"):
            continue
        kind = SEARCH_SETTINGS.get(key)
        if kind is None:
            raise ValueError(
                f"{setting}.options.{key}: not a pocketsphinx option (hmm, lm, dict, {', '.join(SEARCH_SETTINGS)})"
            )
        if isinstance(value, str):  # YAML reads 1e-40 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        valid = {
            _SWITCH: isinstance(value, bool),
            _COUNT: number and value == int(value),
            _PROBABILITY: number and 0.0 < value <= 1.0,
            _WEIGHT: number and value > 0.0,
        }[kind]
        if not valid:
            raise ValueError(f"{setting}.options.{key}={value!r}: must be {kind}")
        out[key] = bool(value) if kind is _SWITCH else int(value) if kind is _COUNT else float(value)
    return out


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
    languages = frozenset({"en"})
    writes_speaker_turns = False  # one turn; speakers come from diarization

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> PocketsphinxTranscriber:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.model") -> None:
        search_settings(spec, setting)
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
        self.decoder = Decoder(loglevel="FATAL", samprate=self.sample_rate, **files, **search_settings(spec))
        self.frame_rate = int(self.decoder.config["frate"])
        self.model_id = "pocketsphinx:" + (
            "en-us" if not any(k in spec.options for k in files) else Path(files["hmm"]).name
        )

    def oov_rate(self, text: str) -> float:
        """Share of the words of `text` missing from the recogniser's dictionary (0 for no words): how far a given
        transcript is from the language the recogniser knows."""
        words = [w for w in _WORD_CHARS.sub(" ", text.lower()).split() if w.strip("'")]
        return sum(self.decoder.lookup_word(w) is None for w in words) / len(words) if words else 0.0

    def _decode(self, x: np.ndarray) -> tuple[str, list[WordConfidence], dict[str, float]]:
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
        acoustic, frames = 0.0, 0
        for seg in self.decoder.seg():
            if seg.word not in _SILENCES:
                # acoustic score relative to the best-scoring state of each frame: 0 where the path follows the
                # acoustics, lower where the words (and fillers) force it away from them, as foreign speech does
                acoustic += math.log(seg.ascore) if seg.ascore > 0 else LN_FLOOR
                frames += seg.end_frame - seg.start_frame + 1
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
        evidence = {
            "mean_confidence": float(np.mean([w.confidence for w in words])) if words else 0.0,
            "acoustic_per_frame": acoustic / frames if frames else LN_FLOOR,
            "frames": float(frames),
        }
        return " ".join(w.word for w in words), words, evidence

    def transcribe(
        self, waveforms: Sequence[np.ndarray], sample_rate: int, language: str | None = None
    ) -> list[TranscriptionResult]:
        results = []
        for x in waveforms:
            if language and language.lower().replace("_", "-").split("-")[0] != self.language:
                results.append(
                    TranscriptionResult(raw="", error=f"pocketsphinx transcribes English only, asked for {language!r}")
                )
                continue
            x = resample(to_mono(x), sample_rate, self.sample_rate)
            if not np.any(np.abs(x) > SILENCE_PEAK):  # the decoder hallucinates a word on digital silence
                results.append(TranscriptionResult(raw="", error="empty output (digital silence)"))
                continue
            text, words, evidence = self._decode(x)
            if not words:
                results.append(TranscriptionResult(raw=text, error="empty output", evidence=evidence))
                continue
            transcript = RichTranscript(
                turns=[Turn(speaker=0, text=text, start_s=words[0].start_s, end_s=words[-1].end_s)],
                language=self.language,
                words=words,
                model_id=self.model_id,
            )
            results.append(TranscriptionResult(transcript=transcript, raw=text, evidence=evidence))
        return results
