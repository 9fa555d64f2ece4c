from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import curation.stages.transcription as transcription
from curation.policy.diarization import join_utterances, speech_span
from curation.policy.wer import wer
from curation.row import Row
from curation.stages.transcription import TranscriptionStage
from models.asr.qwen3_omni import parse_output
from schemas.config import ModelSpec, TranscriptionConfig
from schemas.rejects import RejectReason, Stage
from tests.conftest import DATA
from tests.factories import segment_row

SPEECH = DATA / "speech"
SR = 16000
LEOPARD = "Mr. Quilter is the apostle of the middle classes and we are glad to welcome his gospel."
ARCTIC = {
    "aew_a0001": "Author of the danger trail, Philip Steels, etc.",
    "axb_a0004": "Lord, but I'm glad to see you again, Phil.",
}


def _load(name: str) -> np.ndarray:
    x, sr = sf.read(SPEECH / name, dtype="float32")
    assert sr == SR
    start, end = speech_span(x, SR)
    return x[int(start * SR) : int(end * SR)]


def _row(index: int, wav: np.ndarray, text: str | None = None, file_rows: int = 1, language: str | None = None) -> Row:
    return segment_row(wav, SR, index, text=text, file_rows=file_rows, language=language)


def _outcome(rows: list[Row], i: int):
    r = rows[i].reject
    if r is not None:
        assert r.stage == "transcription"
        return r.reason, r.detail
    return rows[i].sample.transcript


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models gain nothing from intra-op threads, and OpenMP spin-waits stall them on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def local_stage():
    stage = TranscriptionStage(TranscriptionConfig())
    stage.setup()
    return stage


def test_local_profile_batch(local_stage):
    a, b = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav"), _load("pyroomacoustics__cmu_arctic_us_axb_a0004.wav")
    dialogue, _ = join_utterances([(0, a), (1, b)], SR, pause_s=0.5)
    leopard = _load("leopard__test.wav")
    rows = [
        _row(1, dialogue, text=f"{ARCTIC['aew_a0001']} {ARCTIC['axb_a0004']}"),
        _row(2, leopard, text="Completely unrelated words about the weather in spring."),
        _row(3, leopard, text=LEOPARD, file_rows=3),  # a sidecar for a longer input: not ours
        _row(4, leopard).rejected(Stage.QUALITY, RejectReason.QUALITY_BELOW_THRESHOLD, "earlier"),
        _row(5, np.zeros(0, np.float32)),
        _row(6, np.zeros(2 * SR, np.float32)),
        _row(
            7,
            leopard,
            text="<|speaker:0|>Mr. Quilter is the apostle of the middle classes [Laughs]"
            "<|speaker:1|>and we are glad to welcome his [kazoo] gospel.",
        ),
    ]
    before = (rows[3].copy(), rows[3].sample.model_dump_json())
    out = local_stage(rows)
    assert [r.key for r in out] == [r.key for r in rows]

    t = _outcome(out, 0)
    assert [(x.speaker, x.text) for x in t.turns] == [(0, ARCTIC["aew_a0001"]), (1, ARCTIC["axb_a0004"])]
    assert t.model_id == "pocketsphinx:en-us+resemblyzer+sidecar" and t.language == "en"
    assert t.turns[0].end_s == t.turns[1].start_s and abs(t.turns[0].end_s - (len(a) / SR + 0.25)) < 0.5
    assert t.words and all(0 <= w.confidence <= 1 for w in t.words)

    reason, detail = _outcome(out, 1)
    assert reason == "sidecar_disagreement" and "max_sidecar_wer 0.6" in detail

    t = _outcome(out, 2)
    assert t.model_id == "pocketsphinx:en-us+resemblyzer" and len(t.turns) == 1
    assert wer(LEOPARD, t.plain_text()) < 0.5

    assert (out[3], out[3].sample.model_dump_json()) == before and out[3].sample.transcript is None
    assert _outcome(out, 4)[0] == "bad_row" and "empty audio" in _outcome(out, 4)[1]
    assert _outcome(out, 5)[0] == "empty_transcript"

    t = _outcome(out, 6)  # a sidecar with its own speaker turns is kept as written
    assert t.render() == (
        "<|speaker:0|>Mr. Quilter is the apostle of the middle classes [laugh]"
        "<|speaker:1|>and we are glad to welcome his [kazoo] gospel."
    )
    assert t.model_id == "pocketsphinx:en-us+sidecar" and t.unknown_tags == ["kazoo"]
    assert out[4].audio == b"" and all(r.audio for r in (out[0], out[2], out[6]))


def test_pocketsphinx_refuses_other_languages_at_start():
    with pytest.raises(ValueError, match="transcription.language='zh'"):
        TranscriptionStage(TranscriptionConfig(language="zh"))


class ScriptedOmni:
    """Stands in for Qwen3-Omni: answers each waveform (told apart by length) with a scripted text."""

    model_id = "qwen3-omni:scripted"
    sample_rate = SR
    writes_speaker_turns = True

    def __init__(self, answers: dict[int, str | Exception]):
        self.answers = answers

    def transcribe(self, waveforms, sample_rate, language=None):
        out = []
        for x in waveforms:
            answer = self.answers[len(x)]
            if isinstance(answer, Exception):
                raise answer
            out.append(parse_output(answer, self.model_id, language))
        return out


def test_s2_profile_keeps_model_turns_and_rejects_bad_output(monkeypatch):
    answers = {
        SR * 4: "<|speaker:0|>So I told him [laugh] no way, honestly.<|speaker:1|>[whispers] Really? That is wild.",
        SR * 4 + 1: "<|speaker:0|>hi [laugh",
        SR * 4 + 2: "",
        SR * 4 + 3: "<|speaker:0|>" + "thank you " * 8,
        SR * 4 + 4: RuntimeError("CUDA error: device-side assert"),
        SR * 4 + 5: "<|speaker:0|>广州市房地产中介协会分析",
        SR * 4 + 6: "<|speaker:0|>Well [kazoo] that is a strange noise to make.",
        SR * 4 + 7: "<|speaker:0|>The weather is lovely in spring and summer.",
    }
    built = []

    def build(family, spec, setting, **kwargs):
        built.append((family, spec.name, setting))
        return ScriptedOmni(answers)

    monkeypatch.setattr(transcription.registry, "build", build)
    cfg = TranscriptionConfig(model=ModelSpec(name="qwen3-omni"), language="en", unknown_tags="reject")
    stage = TranscriptionStage(cfg)
    assert built == []  # models load at setup, not when the stage is built
    stage.setup()
    assert stage.embedder is None and built == [
        ("asr", "qwen3-omni", "transcription.model")
    ]  # the model writes speaker turns itself
    rng = np.random.default_rng(0)
    rows = [
        _row(
            k,
            rng.standard_normal(n).astype(np.float32) * 0.05,
            text="A different text entirely, nothing alike." if k == 7 else None,
        )
        for k, n in enumerate(sorted(answers))
    ]
    out = stage(rows)

    t = _outcome(out, 0)
    assert t.render() == answers[SR * 4] and t.model_id == "qwen3-omni:scripted" and t.language == "en"
    assert [_outcome(out, i)[0] for i in range(1, 8)] == [
        "malformed_transcript",
        "empty_transcript",
        "repeated_ngram",
        "transcription_failed",
        "language_mismatch",
        "unknown_tag",
        "sidecar_disagreement",
    ]
    assert "position 16" in _outcome(out, 1)[1] and "CUDA error" in _outcome(out, 4)[1]
