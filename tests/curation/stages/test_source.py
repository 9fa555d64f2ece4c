"""Decisions over a whole source: the speech-rate fence over one input's own segments, whatever batched them."""

import numpy as np

from curation.stages.source import SpeechRateOutliers
from schemas.sample import VadInfo
from schemas.transcript import RichTranscript
from tests.factories import segment_row


def source(words_per_segment: list[int], uri: str = "/in/a.wav"):
    rows = []
    for k, n in enumerate(words_per_segment):
        row = segment_row(
            np.zeros(16000 * 4, np.float32), 16000, 0, uri=uri, segment=k, file_rows=len(words_per_segment)
        )
        row.sample.vad = VadInfo(model_id="vad", threshold=0.5, speech_s=4.0)
        row.sample.transcript = RichTranscript.from_inline("<|speaker:0|>" + " ".join(["word"] * n), model_id="asr")
        rows.append(row)
    return rows


def test_an_outlier_among_its_own_source_is_rejected():
    rows = SpeechRateOutliers(k=3.0).process_source(source([10, 10, 11, 9, 10, 10, 11, 10, 26]))
    assert [r.live for r in rows] == [True] * 8 + [False]
    assert rows[-1].reject.reason == "rate_outlier" and "source's fence" in rows[-1].reject.detail


def test_a_source_with_too_few_segments_keeps_them_and_order_does_not_matter():
    assert all(r.live for r in SpeechRateOutliers(k=3.0).process_source(source([10, 10, 26])))
    rows = source([10, 10, 11, 9, 10, 10, 11, 10, 26])
    shuffled = SpeechRateOutliers(k=3.0).process_source(rows[::-1])
    assert [r.key for r in shuffled if not r.live] == [rows[-1].key]
