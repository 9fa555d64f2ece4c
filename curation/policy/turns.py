"""Speaker turns of a transcript from timed words and diarization turns (the `local` profile's speakers), and
source-level ids for turns a model wrote itself (the `s2` profile's).

Each word goes to the diarization turn active at its midpoint. With a reference text (a sidecar), its tokens
replace the ASR words and take their speakers from the ASR words they align with.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

import numpy as np

from curation.policy.diarization import SpeakerTurn
from models.wer import align, normalize_words
from schemas.transcript import Turn, WordConfidence

_TOKEN = re.compile(r"\[[^\]]*\]|[^\s\[]+")  # a tag, or a run of text up to whitespace or a tag


def _turn_at(turns: Sequence[SpeakerTurn], t: float) -> int:
    return max(0, bisect.bisect_right([x.start_s for x in turns], t) - 1)


def _fill(values: list[int | None]) -> list[int]:
    """Unset entries take the previous set value (the next one at the start)."""
    first = next((v for v in values if v is not None), 0)
    out, last = [], first
    for v in values:
        last = v if v is not None else last
        out.append(last)
    return out


def _project_owners(tokens: Sequence[str], words: Sequence[str], word_owner: Sequence[int]) -> list[int]:
    """Owner (diarization turn) of each text token, through the word alignment of text and ASR words."""
    flat = [(u, k) for k, tok in enumerate(tokens) if not tok.startswith("[") for u in normalize_words(tok)]
    hyp, hyp_owner = [], []
    for w, o in zip(words, word_owner):
        for u in normalize_words(w):
            hyp.append(u)
            hyp_owner.append(o)
    owners: list[int | None] = [None] * len(tokens)
    for r, h in align([u for u, _ in flat], hyp):
        if r is not None and h is not None and owners[flat[r][1]] is None:
            owners[flat[r][1]] = hyp_owner[h]
    return _fill(owners)


def speaker_turns(words: Sequence[WordConfidence], turns: Sequence[SpeakerTurn], text: str | None = None) -> list[Turn]:
    """Transcript turns from timed words and diarization turns; with `text`, its tokens replace the words
    and take their speakers from the aligned words. Speakers are renumbered by first appearance."""
    return speaker_turns_mapped(words, turns, text)[0]


def speaker_turns_mapped(
    words: Sequence[WordConfidence], turns: Sequence[SpeakerTurn], text: str | None = None
) -> tuple[list[Turn], dict[int, int]]:
    """`speaker_turns`, and which diarization speaker each transcript speaker is ({diarization: transcript}; a
    diarization speaker to whom no word went has no transcript speaker)."""
    word_owner = [_turn_at(turns, ((w.start_s or 0.0) + (w.end_s or 0.0)) / 2) for w in words]
    if text is None:
        tokens, owners = [w.word for w in words], word_owner
    else:
        tokens = _TOKEN.findall(text)
        owners = _project_owners(tokens, [w.word for w in words], word_owner)
    groups: list[list] = []  # [speaker, first diarization turn, last diarization turn, tokens]
    for tok, o in zip(tokens, owners):
        if groups and groups[-1][0] == turns[o].speaker:
            groups[-1][2] = max(groups[-1][2], o)
            groups[-1][3].append(tok)
        else:
            groups.append([turns[o].speaker, o, o, [tok]])
    order = {s: k for k, s in enumerate(dict.fromkeys(g[0] for g in groups))}
    return [
        Turn(speaker=order[s], text=" ".join(toks), start_s=turns[a].start_s, end_s=turns[b].end_s)
        for s, a, b, toks in groups
    ], order


def model_turn_source_ids(turns: Sequence[Turn], source_turns: Sequence[SpeakerTurn], duration_s: float) -> list[int]:
    """Source-level ids for turns a model wrote itself (Qwen3-Omni: its own speaker numbers, often no times): each turn
    spans its own times where given, else a share of the segment proportional to its text; each of the model's
    speakers takes the source speaker (from `source_turns`, the source-level diarization of the segment) its turns
    overlap longest, so one model speaker is one source voice throughout the segment."""
    lengths = np.array([max(len(t.text), 1) for t in turns], dtype=np.float64)
    bounds = np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum() * duration_s
    time: dict[int, dict[int, float]] = {}
    for k, turn in enumerate(turns):
        timed = turn.start_s is not None and turn.end_s is not None
        a, b = (turn.start_s, turn.end_s) if timed else (bounds[k], bounds[k + 1])
        share = time.setdefault(turn.speaker, {})
        for s in source_turns:
            share[s.speaker] = share.get(s.speaker, 0.0) + max(0.0, min(b, s.end_s) - max(a, s.start_s))
    owner = {spk: max(sorted(share), key=lambda s: share[s]) for spk, share in time.items() if share}
    return [owner.get(t.speaker, source_turns[0].speaker) for t in turns]
