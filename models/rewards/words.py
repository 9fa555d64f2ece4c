"""Word comparison for the offline R_STT: the normalisation and minimum-edit alignment curation's WER uses
(curation/policy/wer.py; models/ cannot import curation): lower case, punctuation dropped (apostrophes inside words
kept), hyphens split words, one token per Han or kana character."""

from __future__ import annotations

import unicodedata


def _unspaced(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x2FA1F
    )


def normalize_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    chars = [f" {ch} " if _unspaced(ch) else ch if ch.isalnum() or ch == "'" else " " for ch in text]
    return [w.strip("'") for w in "".join(chars).split() if w.strip("'")]


def align(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """Minimum-edit alignment as (ref index, hyp index) pairs; None on one side is a deletion or insertion. Among
    equally cheap paths, matches first, then deletions/insertions, then substitutions."""
    n, m = len(ref), len(hyp)
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
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
