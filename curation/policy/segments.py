"""Segmentation policy: frame speech probabilities -> utterance spans within [min_s, max_s].

1. speech regions by hysteresis on the probability (start at `threshold`, end below threshold - 0.15);
2. islands shorter than `min_speech_s` dropped, gaps shorter than `merge_gap_s` closed;
3. regions longer than the budget split at their longest pause (recursively; the lowest-probability
   frame when there is no pause), preferring cuts that leave both sides at least `min_s`;
4. neighbouring utterances joined across pauses of at most `merge_pause_s` while the result stays within
   `target_s` (and `max_s`): TTS trains on sentences to paragraphs, not on single words;
5. too-short utterances merged with the nearer neighbour when the gap is small and the result fits;
6. `pad_s` of context added on each side, never past the file or half-way to a neighbour.
A whole input (not a piece of a longer one) of at most `whole_input_max_s` whose speech is one utterance is kept
whole, its own leading and trailing silence included (up to WHOLE_EDGE_S each): a file that is one short
prompt or one laugh is the unit its author meant. Spans still shorter than `min_s` are returned separately so
the caller can record them as rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.config import SegmentationConfig

HYSTERESIS = 0.15
WHOLE_EDGE_S = 1.0  # a whole input keeps at most this much silence before and after its utterance (beyond pad_s)


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float
    speech_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _regions(speech: np.ndarray, probs: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    low = max(threshold - HYSTERESIS, 0.01)
    out, start, active = [], 0, False
    for i, p in enumerate(probs):
        if not active and p >= threshold:
            active, start = True, i
        elif active and p < low:
            active = False
            out.append((start, i))
    if active:
        out.append((start, len(probs)))
    return out


def _split(
    region: tuple[int, int], probs: np.ndarray, threshold: float, max_f: int, min_f: int
) -> list[tuple[int, int]]:
    a, b = region
    if b - a <= max_f:
        return [region]
    below = probs[a:b] < threshold
    # pauses: runs of below-threshold frames strictly inside the region, as (start, end) absolute frames
    edges = np.flatnonzero(np.diff(np.concatenate([[0], below.astype(np.int8), [0]])))
    pauses = [(a + s, a + e) for s, e in zip(edges[::2], edges[1::2]) if s > 0 and e < b - a]

    def fits(cut: int) -> bool:
        return cut - a >= min_f and b - cut >= min_f

    good = [p for p in pauses if fits((p[0] + p[1]) // 2)]
    candidates = good or pauses
    if candidates:
        # longest pause; among equals the one nearest the middle (balanced halves)
        s, e = max(candidates, key=lambda p: (p[1] - p[0], -abs((p[0] + p[1]) / 2 - (a + b) / 2)))
        left, right = (a, s), (e, b)
    else:
        # no pause: cut at the least speech-like frame, ties going to the middle (balanced halves)
        lo, hi = (a + min_f, b - min_f) if b - a >= 2 * min_f else (a + 1, b - 1)
        window = probs[lo:hi] + 1e-3 * np.abs(np.arange(lo, hi) - (a + b) / 2) / (b - a)
        cut = lo + int(np.argmin(window)) if hi > lo else (a + b) // 2
        left, right = (a, cut), (cut, b)
    return _split(left, probs, threshold, max_f, min_f) + _split(right, probs, threshold, max_f, min_f)


def _merge_short(regions: list[tuple[int, int]], min_f: int, max_f: int, gap_f: int) -> list[tuple[int, int]]:
    regions = list(regions)
    changed = True
    while changed:
        changed = False
        for i, (a, b) in enumerate(regions):
            if b - a >= min_f:
                continue
            options = []
            if i > 0 and a - regions[i - 1][1] <= gap_f and b - regions[i - 1][0] <= max_f:
                options.append((a - regions[i - 1][1], i - 1))
            if i + 1 < len(regions) and regions[i + 1][0] - b <= gap_f and regions[i + 1][1] - a <= max_f:
                options.append((regions[i + 1][0] - b, i + 1))
            if options:
                _, j = min(options)
                lo, hi = min(i, j), max(i, j)
                regions[lo : hi + 1] = [(regions[lo][0], regions[hi][1])]
                changed = True
                break
    return regions


def _join_toward(regions: list[tuple[int, int]], target_f: int, pause_f: int) -> list[tuple[int, int]]:
    """Consecutive regions joined, left to right, while the pause before the next is at most `pause_f` frames and
    the joined region fits `target_f` frames."""
    out: list[tuple[int, int]] = []
    for a, b in regions:
        if out and a - out[-1][1] <= pause_f and b - out[-1][0] <= target_f:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def plan_segments(
    probs: np.ndarray, frame_s: float, duration_s: float, cfg: SegmentationConfig, whole_input: bool = False
) -> tuple[list[Span], list[Span]]:
    """(kept, too_short) spans in seconds for one file, in time order, never overlapping. `whole_input`: the
    probabilities cover a whole input (not one piece of a longer one), which may then be kept whole."""
    probs = np.asarray(probs, dtype=np.float32)
    sec = lambda s: int(round(s / frame_s))  # noqa: E731
    regions = [
        r
        for r in _regions(probs >= cfg.threshold, probs, cfg.threshold)
        if r[1] - r[0] >= max(sec(cfg.min_speech_s), 1)
    ]
    merged: list[tuple[int, int]] = []
    for r in regions:
        if merged and r[0] - merged[-1][1] < sec(cfg.merge_gap_s):
            merged[-1] = (merged[-1][0], r[1])
        else:
            merged.append(r)
    max_f = max(sec(cfg.max_s - 2 * cfg.pad_s), 1)
    min_f = max(sec(cfg.min_s - 2 * cfg.pad_s), 1)
    # a cut without a pause gets no padding, so both sides must reach min_s on their own
    split = [piece for r in merged for piece in _split(r, probs, cfg.threshold, max_f, sec(cfg.min_s))]
    if cfg.target_s > 0:
        target = min(cfg.target_s, cfg.max_s)
        split = _join_toward(split, max(sec(target - 2 * cfg.pad_s), 1), sec(cfg.merge_pause_s))
    final = _merge_short(split, min_f, max_f, sec(cfg.merge_short_gap_s))
    if whole_input and len(final) == 1 and duration_s <= min(cfg.whole_input_max_s, cfg.max_s):
        a, b = final[0]
        edge = cfg.pad_s + WHOLE_EDGE_S
        if a * frame_s <= edge and duration_s - b * frame_s <= edge:
            span = Span(0.0, round(duration_s, 4), round(float((probs[a:b] >= cfg.threshold).sum()) * frame_s, 3))
            return ([span], []) if span.duration_s >= cfg.min_s else ([], [span])

    kept, short = [], []
    for i, (a, b) in enumerate(final):
        s, e = a * frame_s, min(b * frame_s, duration_s)
        prev_end = final[i - 1][1] * frame_s if i else 0.0
        next_start = final[i + 1][0] * frame_s if i + 1 < len(final) else duration_s
        start = max(s - cfg.pad_s, (prev_end + s) / 2 if i else 0.0, 0.0)
        end = min(e + cfg.pad_s, (e + next_start) / 2 if i + 1 < len(final) else duration_s, duration_s)
        start, end = round(start, 4), round(min(end, start + cfg.max_s), 4)
        span = Span(start, end, round(float((probs[a:b] >= cfg.threshold).sum()) * frame_s, 3))
        (kept if span.duration_s >= cfg.min_s else short).append(span)
    return kept, short
