from __future__ import annotations

import pytest

from curation.policy.text_filters import (
    Rate,
    check_empty,
    check_language,
    check_rate,
    check_repeats,
    longest_repeat,
    source_rate_verdicts,
    speech_rate,
)
from models.wer import align, normalize_words, wer, word_errors
from schemas.rejects import RejectReason
from schemas.transcript import RichTranscript


def _t(text: str) -> RichTranscript:
    return RichTranscript.from_inline(text, "m", implicit_speaker=True)


def test_wer_normalises_case_and_punctuation():
    assert wer("Mr. Quilter, the apostle!", "mr quilter the apostle") == 0.0
    assert normalize_words("we're middle-classes 广州") == ["we're", "middle", "classes", "广", "州"]
    assert word_errors("a b c d", "a x c") == (2, 4)  # one substitution, one deletion
    assert wer("a b", "a b c d") == 1.0  # insertions count
    assert wer("", "") == 0.0 and wer("", "x") == 1.0
    assert wer("广州市房地产", "广州市房产") == pytest.approx(1 / 6)  # unspaced scripts: per character


def test_alignment_pairs_every_word_once():
    ref, hyp = "the cat sat down".split(), "a cat sat".split()
    pairs = align(ref, hyp)
    assert [r for r, _ in pairs if r is not None] == [0, 1, 2, 3]
    assert [h for _, h in pairs if h is not None] == [0, 1, 2]
    assert (1, 1) in pairs and (2, 2) in pairs


def test_empty_after_tags():
    assert check_empty(_t("[laugh] [sigh]"))[0] == "empty_transcript"
    assert check_empty(_t("[laugh] [sigh]"))[0] is RejectReason.EMPTY_TRANSCRIPT  # verdicts carry the typed reason
    assert check_empty(_t("[laugh] ha")) is None


def test_repeated_ngrams():
    loop = _t("so yes I do " + "yes I do " * 4)  # 'yes i do' 5 times in a row
    assert longest_repeat(normalize_words(loop.plain_text())) == (5, ("yes", "i", "do"))
    assert check_repeats(loop, 4)[0] == "repeated_ngram"
    assert "5 times" in check_repeats(loop, 4)[1]
    assert check_repeats(loop, 5) is None
    assert check_repeats(_t("no " * 10), 4)[0] == "repeated_ngram"  # 'no no' five times
    assert check_repeats(_t("[laugh] ha " * 5), 4)[0] == "repeated_ngram"  # tags count as tokens
    assert check_repeats(_t("<|speaker:0|>well ok<|speaker:1|>well ok<|speaker:0|>fine"), 4) is None


def test_rate_bounds_and_source_fence():
    assert speech_rate(_t("one two three four"), 2.0) == Rate(2.0, "words")
    assert speech_rate(_t("广州市房地产中介协会分析"), 4.0) == Rate(3.0, "chars")
    verdicts = [
        check_rate(r) for r in (Rate(2.5, "words"), Rate(20.0, "words"), Rate(0.1, "words"), Rate(3.0, "chars"))
    ]
    assert [v and v[0] for v in verdicts] == [None, "rate_outlier", "rate_outlier", None]
    assert "bounds" in verdicts[1][1]
    # Enough segments of one source for quartiles: 6.5 w/s is inside the absolute bounds but far outside its source.
    source = [Rate(v, "words") for v in (2.4, 2.5, 2.6, 2.5, 2.7, 2.3, 2.6, 2.5, 6.5)]
    verdicts = source_rate_verdicts(source, k=3.0)
    assert [i for i, v in enumerate(verdicts) if v] == [8] and "source's fence" in verdicts[8][1]
    assert not any(source_rate_verdicts(source[:6] + source[8:], k=3.0))  # too few segments for the fence


def test_language_checks():
    zh, en = _t("广州市房地产中介协会分析"), _t("hello there")
    assert check_language(zh, "en")[0] == "language_mismatch"
    assert check_language(zh, "zh") is None and check_language(en, "en") is None
    assert check_language(en, None) is None
    assert check_language(en, "en", ["fr"])[0] == "language_mismatch"
    assert check_language(en, "en-US", [None, "en"]) is None
    assert check_language(en, "xx") is None  # unknown language: no script check
