"""Hallucination and sanity filters on transcripts. Each check returns None (pass) or (RejectReason, detail).

empty_transcript     no words left once tags are removed
repeated_ngram       an n-gram (n >= 2) repeated back to back too often: a decoding loop
rate_outlier         words (or characters, for Chinese/Japanese) per second of speech out of the
                     absolute bounds, or an interquartile-rule outlier among its source's segments
language_mismatch    the text's script, or a declared language, contradicts the expected language
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.wer import normalize_words
from schemas.rejects import RejectReason
from schemas.transcript import RichTranscript

Verdict = tuple[RejectReason, str] | None

MAX_NGRAM = 10  # longest n-gram searched for loops
# Absolute bounds of speaking rate, per second of speech (VAD speech time where known).
WORD_RATE_BOUNDS = (0.5, 7.0)  # spaced scripts: words per second
CHAR_RATE_BOUNDS = (1.0, 12.0)  # Chinese/Japanese: characters per second
MIN_ROWS_FOR_IQR = 8  # fewer rates than this give no usable quartiles
IQR_FLOOR = 0.1  # IQR at least this fraction of the median, so a uniform source does not reject its own spread

# Writing systems of the languages most often met; a language absent here skips the script check.
SCRIPTS = {
    "LATIN": {
        "en",
        "fr",
        "de",
        "es",
        "it",
        "pt",
        "nl",
        "sv",
        "da",
        "no",
        "nb",
        "fi",
        "pl",
        "cs",
        "sk",
        "tr",
        "vi",
        "id",
        "ms",
        "ro",
        "hu",
        "ca",
        "hr",
        "sl",
        "et",
        "lv",
        "lt",
        "tl",
        "sw",
        "af",
        "eu",
        "gl",
        "cy",
        "ga",
    },
    "CJK": {"zh", "ja", "yue"},
    "HIRAGANA": {"ja"},
    "KATAKANA": {"ja"},
    "HANGUL": {"ko"},
    "CYRILLIC": {"ru", "uk", "bg", "sr", "be", "kk", "mk", "mn"},
    "ARABIC": {"ar", "fa", "ur", "ps"},
    "DEVANAGARI": {"hi", "mr", "ne"},
    "GREEK": {"el"},
    "HEBREW": {"he", "yi"},
    "THAI": {"th"},
}
_KNOWN_LANGUAGES = set().union(*SCRIPTS.values())
_TOKEN = re.compile(r"\[[^\]]*\]|[^\s\[]+")


def tokens(transcript: RichTranscript) -> list[str]:
    """Words (normalised) and tags, across turns, in order: what a decoding loop repeats."""
    out: list[str] = []
    for turn in transcript.turns:
        for tok in _TOKEN.findall(turn.text):
            out.extend([tok] if tok.startswith("[") else normalize_words(tok))
    return out


def longest_repeat(toks: Sequence[str], max_n: int = MAX_NGRAM) -> tuple[int, tuple[str, ...]]:
    """Most back-to-back occurrences of any n-gram with 2 <= n <= max_n, and that n-gram."""
    best, gram = 1, ()
    for n in range(2, min(max_n, len(toks) // 2) + 1):
        for i in range(len(toks) - 2 * n + 1):
            count, j = 1, i + n
            while j + n <= len(toks) and toks[j : j + n] == toks[i : i + n]:
                count, j = count + 1, j + n
            if count > best:
                best, gram = count, tuple(toks[i : i + n])
    return best, gram


def check_repeats(transcript: RichTranscript, max_repeats: int) -> Verdict:
    count, gram = longest_repeat(tokens(transcript))
    if count > max_repeats:
        return RejectReason.REPEATED_NGRAM, f"{' '.join(gram)!r} repeated {count} times in a row (max {max_repeats})"
    return None


def check_empty(transcript: RichTranscript) -> Verdict:
    return (
        None
        if normalize_words(transcript.plain_text())
        else (RejectReason.EMPTY_TRANSCRIPT, "no words once tags are removed")
    )


def _unspaced_share(text: str) -> float:
    units = normalize_words(text)
    return sum(len(u) == 1 and dominant_script(u) in ("CJK", "HIRAGANA", "KATAKANA") for u in units) / max(
        1, len(units)
    )


@dataclass(frozen=True)
class Rate:
    value: float  # units per second of speech
    unit: str  # 'words' or 'chars'


def speech_rate(transcript: RichTranscript, speech_s: float) -> Rate:
    text = transcript.plain_text()
    unit = "chars" if _unspaced_share(text) > 0.5 else "words"
    return Rate(len(normalize_words(text)) / max(speech_s, 1e-3), unit)


def check_rate(rate: Rate) -> Verdict:
    """The absolute bounds of speaking rate, for one segment."""
    lo, hi = WORD_RATE_BOUNDS if rate.unit == "words" else CHAR_RATE_BOUNDS
    if not lo <= rate.value <= hi:
        return RejectReason.RATE_OUTLIER, f"{rate.value:.2f} {rate.unit}/s outside the bounds [{lo}, {hi}]"
    return None


def source_rate_verdicts(rates: Sequence[Rate], k: float) -> list[Verdict]:
    """The interquartile rule (k x IQR beyond the quartiles) among the rates of one source's segments, per unit,
    when the source has enough of them."""
    out: list[Verdict] = [None] * len(rates)
    for unit in ("words", "chars"):
        idx = [i for i, r in enumerate(rates) if r.unit == unit]
        if len(idx) < MIN_ROWS_FOR_IQR:
            continue
        values = np.array([rates[i].value for i in idx])
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        iqr = max(q3 - q1, IQR_FLOOR * med)
        lo, hi = q1 - k * iqr, q3 + k * iqr
        for i, v in zip(idx, values):
            if not lo <= v <= hi:
                out[i] = (
                    RejectReason.RATE_OUTLIER,
                    f"{v:.2f} {unit}/s outside its source's fence [{lo:.2f}, {hi:.2f}] (k={k})",
                )
    return out


def dominant_script(text: str) -> str | None:
    """Most frequent script among the letters of `text` (first word of the Unicode name: LATIN, CJK, ...)."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split()[0]
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.get) if counts else None


def check_language(transcript: RichTranscript, expected: str | None, declared: Sequence[str | None] = ()) -> Verdict:
    """Mismatch when a declared language (the source's, the model's) differs from `expected`, or the text
    is written in a script `expected` does not use."""
    if not expected:
        return None
    base = expected.lower().split("-")[0]
    for lang in declared:
        if lang and lang.lower().split("-")[0] != base:
            return RejectReason.LANGUAGE_MISMATCH, f"declared language {lang!r}, expected {expected!r}"
    script = dominant_script(transcript.plain_text())
    if base in _KNOWN_LANGUAGES and script is not None and base not in SCRIPTS.get(script, set()):
        return RejectReason.LANGUAGE_MISMATCH, f"text is mostly {script} script, unexpected for {expected!r}"
    return None
