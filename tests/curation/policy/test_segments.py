import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.policy.segments import plan_segments
from schemas.config import SegmentationConfig

FRAME = 0.032
CFG = SegmentationConfig()


def curve(total_s: float, speech: list[tuple[float, float]], level: float = 0.95) -> np.ndarray:
    p = np.full(int(round(total_s / FRAME)), 0.02, np.float32)
    for a, b in speech:
        p[int(a / FRAME) : int(b / FRAME)] = level
    return p


def check_invariants(kept, short, duration, cfg=CFG):
    spans = sorted(kept + short, key=lambda s: s.start_s)
    for s in kept:
        assert cfg.min_s <= s.duration_s <= cfg.max_s + 1e-6
    for s in short:
        assert s.duration_s < cfg.min_s
    for s in spans:
        assert 0 <= s.start_s < s.end_s <= duration + 1e-6
    for a, b in zip(spans, spans[1:]):
        assert a.end_s <= b.start_s + 1e-9


def test_one_utterance_is_padded_within_the_file():
    kept, short = plan_segments(curve(12, [(2, 8)]), FRAME, 12, CFG)
    assert short == [] and len(kept) == 1
    assert abs(kept[0].start_s - (2 - CFG.pad_s)) < 0.05 and abs(kept[0].end_s - (8 + CFG.pad_s)) < 0.05
    assert abs(kept[0].speech_s - 6) < 0.1


def test_long_speech_is_split_at_the_longest_pause():
    # 0-14 s speech, 0.3 s pause, 14.3-26 s, 0.9 s pause, 26.9-52 s: the 0.9 s pause must be a cut
    p = curve(55, [(0.5, 14), (14.3, 26), (26.9, 52)])
    kept, short = plan_segments(p, FRAME, 55, SegmentationConfig(merge_gap_s=1.0))
    check_invariants(kept, short, 55)
    assert any(abs(s.end_s - 26.0) < 0.6 for s in kept)


def test_continuous_speech_without_pauses_is_still_bounded():
    kept, short = plan_segments(curve(95, [(1, 94)]), FRAME, 95, CFG)
    check_invariants(kept, short, 95)
    assert len(kept) >= 4 and not short


def test_short_neighbours_merge_and_isolated_blips_are_reported():
    # with a 2 s minimum, two 1.2 s words 0.6 s apart merge into one utterance; a lone 0.5 s word is too short
    p = curve(30, [(2, 3.2), (3.8, 5.0), (15, 15.5)])
    kept, short = plan_segments(p, FRAME, 30, SegmentationConfig(merge_gap_s=0.3, target_s=0, min_s=2.0))
    assert len(kept) == 1 and 2 - CFG.pad_s - 0.05 < kept[0].start_s < 2 and 5 < kept[0].end_s < 5.3
    assert len(short) == 1 and 14.5 < short[0].start_s < 15


def test_utterances_down_to_one_second_are_kept():
    # read sentences of 1.2-2.4 s, 4 s apart (too far to join): each is its own kept segment
    speech = [(2, 3.2), (7, 9.4), (14, 15.8)]
    kept, short = plan_segments(curve(20, speech), FRAME, 20, CFG)
    assert short == [] and len(kept) == 3
    assert CFG.min_s == 1.0 and all(s.duration_s >= 1.0 for s in kept)
    # the old 3 s minimum rejected all three
    kept, short = plan_segments(curve(20, speech), FRAME, 20, SegmentationConfig(min_s=3.0))
    assert kept == [] and len(short) == 3


def test_neighbours_join_across_short_pauses_toward_the_target_length():
    # 1.5 s utterances with 0.8 s pauses: joined while the result stays within target_s; a 2 s pause is never crossed
    speech = [(1 + 2.3 * k, 2.5 + 2.3 * k) for k in range(6)] + [(16.3, 17.8)]
    cfg = SegmentationConfig(target_s=6.0, merge_pause_s=1.0)
    kept, short = plan_segments(curve(20, speech), FRAME, 20, cfg)
    check_invariants(kept, short, 20, cfg)
    # 1.5 + 0.8 + 1.5 (+ 2 x 0.2 pad) fits in 6 s, a third utterance would not
    assert [round(s.duration_s, 1) for s in kept] == [4.2, 4.2, 4.2, 1.9]
    assert 15.8 < kept[-1].start_s < 16.3  # after the 2 s pause: a segment of its own
    # joining off: every utterance alone
    kept, _ = plan_segments(curve(20, speech), FRAME, 20, SegmentationConfig(target_s=0))
    assert len(kept) == 7


def test_a_whole_input_that_is_one_short_utterance_is_kept_whole():
    p = curve(1.6, [(0.35, 1.05)])  # a 0.7 s laugh in a 1.6 s file: padded it would be 1.1 s, cut from the file
    kept, short = plan_segments(p, FRAME, 1.6, CFG, whole_input=True)
    assert short == [] and [(s.start_s, s.end_s) for s in kept] == [(0.0, 1.6)] and abs(kept[0].speech_s - 0.7) < 0.1
    # a piece of a longer input is cut as usual
    kept, short = plan_segments(p, FRAME, 1.6, CFG)
    assert kept[0].start_s > 0.1 and kept[0].end_s < 1.5
    # a whole input with a long silence after its utterance is not kept whole
    kept, _ = plan_segments(curve(9, [(0.3, 2.5)]), FRAME, 9, CFG, whole_input=True)
    assert len(kept) == 1 and kept[0].end_s < 3
    # two utterances far apart are two segments, not one whole file
    kept, _ = plan_segments(curve(12, [(0.3, 2.5), (9, 11.5)]), FRAME, 12, CFG, whole_input=True)
    assert len(kept) == 2
    # a whole input shorter than min_s is still too short
    kept, short = plan_segments(curve(0.8, [(0.1, 0.7)]), FRAME, 0.8, CFG, whole_input=True)
    assert kept == [] and [(s.start_s, s.end_s) for s in short] == [(0.0, 0.8)]


def test_silence_gives_nothing():
    kept, short = plan_segments(curve(20, []), FRAME, 20, CFG)
    assert kept == [] and short == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=3000), st.floats(0.2, 0.8))
def test_any_probability_curve_gives_valid_spans(values, threshold):
    p = np.repeat(np.asarray(values, np.float32), 3)
    duration = len(p) * FRAME
    cfg = SegmentationConfig(threshold=threshold)
    for whole in (False, True):
        kept, short = plan_segments(p, FRAME, duration, cfg, whole_input=whole)
        check_invariants(kept, short, duration, cfg)
