"""Word error rate on normalised plain text, and the word alignment behind it.

Normalisation: lower case, punctuation dropped (apostrophes inside words kept), hyphens split words.
Scripts written without spaces (Han and kana; Hangul is spaced) count one token per character, which
makes the same function a character error rate for Chinese and Japanese.
"""

from __future__ import annotations

import unicodedata


def _unspaced(ch: str) -> bool:
    """Han ideographs and Japanese kana: scripts whose words are not separated by spaces."""
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x2FA1F
    )


def normalize_words(text: str) -> list[str]:
    """Plain text -> comparison tokens."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    chars: list[str] = []
    for ch in text:
        if _unspaced(ch):
            chars.append(f" {ch} ")
        elif ch.isalnum() or ch == "'":
            chars.append(ch)
        else:
            chars.append(" ")
    return [w.strip("'") for w in "".join(chars).split() if w.strip("'")]


def align(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """Minimum-edit alignment: pairs (ref index, hyp index); None on one side marks a deletion/insertion."""
    n, m = len(ref), len(hyp)
    # cost[i][j] = edits turning ref[:i] into hyp[:j]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev, r = cost[i], cost[i - 1], ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    # Among equally cheap paths prefer matches, then insertions/deletions, then substitutions: a word is
    # then paired with a different word only when nothing better explains it.
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and ref[i - 1] == hyp[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            pairs.append((None, j - 1))
            j -= 1
        else:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
    return pairs[::-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference length) after normalisation."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    errors = sum(1 for r, h in align(ref, hyp) if r is None or h is None or ref[r] != hyp[h])
    return errors, len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate; an empty reference gives 0 for an empty hypothesis, else 1."""
    errors, n = word_errors(reference, hypothesis)
    if n == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / n
