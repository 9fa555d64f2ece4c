"""Decisions over a whole source, whatever batched its segments: the speech-rate fence over one input's own segments, and
its speakers (source-level diarization over real voices)."""

import numpy as np
import pytest
import soundfile as sf

from curation.policy.diarization import (
    DiarizationParams,
    diarize_segment,
    join_utterances,
    segment_voices,
    speech_span,
)
from curation.row import SpeakerEvidence
from curation.stages.source import SourceSpeakers, SpeechRateOutliers
from models import registry
from schemas.config import ModelSpec
from schemas.sample import VadInfo
from schemas.transcript import RichTranscript, Turn, WordConfidence
from tests.conftest import DATA
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


# --- source-level speakers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield registry.build("speaker", ModelSpec(name="resemblyzer", device="cpu"), "transcription.speaker_model")
    torch.set_num_threads(threads)


def _clip(name: str) -> np.ndarray:
    x, sr = sf.read(DATA / "speech" / name, dtype="float32")
    start, end = speech_span(x, sr)
    return x[int(start * sr) : int(end * sr)]


def _voiced_segments(embedder, waves: list[np.ndarray], uri: str = "/in/call.wav") -> list:
    """Segments of one source as the transcription stage leaves them: a one-turn transcript with timed words (one
    word per 0.4 s) and the segment's voices."""
    rows = []
    for k, x in enumerate(waves):
        row = segment_row(x, 16000, 0, uri=uri, segment=k, start_s=10.0 * k, file_rows=len(waves))
        dur = len(x) / 16000
        words = [
            WordConfidence(word=f"w{i}", confidence=0.9, start_s=t, end_s=t + 0.3)
            for i, t in enumerate(np.arange(0.05, dur - 0.3, 0.4))
        ]
        text = " ".join(w.word for w in words)
        row.sample.transcript = RichTranscript(turns=[Turn(speaker=0, text=text)], words=words, model_id="asr")
        _, voices = diarize_segment(x, 16000, embedder)
        row.speakers = SpeakerEvidence(voices)
        rows.append(row)
    return rows


def test_a_voice_has_one_id_in_every_segment_of_its_source(embedder):
    a = [_clip(f"pyroomacoustics__cmu_arctic_us_aew_a000{i}.wav") for i in (1, 2, 3)]
    b = [_clip(f"pyroomacoustics__cmu_arctic_us_axb_a000{i}.wav") for i in (4, 6)]
    both, _ = join_utterances([(0, a[2]), (1, b[1])], 16000)
    # each segment alone numbers its first voice 0: nothing links B's segments to each other, or A's
    rows = _voiced_segments(embedder, [a[0], b[0], a[1], both])
    out = SourceSpeakers(DiarizationParams()).process_source(rows[::-1])  # arrival order does not matter
    assert all(r.live and r.speakers is None for r in out)
    ids = [[(t.speaker, t.source_speaker) for t in r.sample.transcript.turns] for r in rows]
    assert ids[0] == [(0, 0)] and ids[1] == [(0, 1)] and ids[2] == [(0, 0)]
    assert ids[3] == [(0, 0), (1, 1)]  # the two-voice segment: A then B, with their source ids
    assert [r.sample.source_speakers for r in rows] == [2, 2, 2, 2]
    # every word is still there, in order, in the turns
    assert all(r.sample.transcript.plain_text() == " ".join(w.word for w in r.sample.transcript.words) for r in rows)


def test_single_speaker_jobs_reject_segments_with_two_voices(embedder):
    a = [_clip(f"pyroomacoustics__cmu_arctic_us_aew_a000{i}.wav") for i in (1, 3)]
    b = _clip("pyroomacoustics__cmu_arctic_us_axb_a0006.wav")
    both, _ = join_utterances([(0, a[1]), (1, b)], 16000)
    rows = _voiced_segments(embedder, [a[0], both])
    out = SourceSpeakers(DiarizationParams(), max_speakers=1).process_source(rows)
    assert out[0].live and out[1].reject.reason == "too_many_speakers" and "max_speakers 1" in out[1].reject.detail


def test_turns_the_transcriber_wrote_get_source_ids(embedder):
    """The s2 profile: Qwen3-Omni writes its own turns (its own speaker numbers, no times); each of its speakers takes
    the source voice its turns cover, the same voice the same id in every segment."""
    a = [_clip(f"pyroomacoustics__cmu_arctic_us_aew_a000{i}.wav") for i in (1, 2, 3)]
    b = [_clip(f"pyroomacoustics__cmu_arctic_us_axb_a000{i}.wav") for i in (4, 6)]
    both, _ = join_utterances([(1, b[1]), (0, a[2])], 16000)  # B speaks first: the model calls B speaker 0 here
    written = [
        [Turn(speaker=0, text="one voice only")],
        [Turn(speaker=0, text="another voice")],
        [Turn(speaker=0, text="the first voice of this segment talks"), Turn(speaker=1, text="and the second answers")],
    ]
    rows = []
    for k, (x, turns) in enumerate(zip([a[0], b[0], both], written)):
        row = segment_row(x, 16000, 0, uri="/in/call.wav", segment=k, start_s=10.0 * k, file_rows=3)
        row.sample.transcript = RichTranscript(turns=turns, model_id="qwen3-omni")
        row.speakers = SpeakerEvidence(segment_voices(x, 16000, embedder), model_turns=True)
        rows.append(row)
    SourceSpeakers(DiarizationParams()).process_source(rows[::-1])
    ids = [[(t.speaker, t.source_speaker) for t in r.sample.transcript.turns] for r in rows]
    assert ids == [[(0, 0)], [(0, 1)], [(0, 1), (1, 0)]]
    assert [t.text for t in rows[2].sample.transcript.turns] == [t.text for t in written[2]]  # kept as written
    assert [r.sample.source_speakers for r in rows] == [2, 2, 2]
