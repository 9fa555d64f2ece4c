from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import curation.stages.transcription as transcription
from curation.policy.diarization import diarize_segment, join_utterances, speech_span
from curation.row import Row
from curation.stages.transcription import TranscriptionStage
from models.asr.qwen3_omni import parse_output
from models.wer import wer
from schemas.config import ModelSpec, TranscriptionConfig
from schemas.rejects import RejectReason, Stage
from tests.conftest import DATA
from tests.factories import segment_row

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin

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
    # its voices travel with the row for source-level diarization: windows embedded over the whole dialogue
    voices = out[0].speakers.voices
    assert out[0].speakers.text == f"{ARCTIC['aew_a0001']} {ARCTIC['axb_a0004']}"
    assert voices.embeddings.shape == (len(voices.windows), 256) and len(voices.windows) > 10
    assert voices.speech.sum() * 0.01 > 0.8 * (len(a) + len(b)) / SR
    # the sidecar the ASR agrees with vouches for the language: English, as the recogniser says
    assert (out[0].sample.language, out[0].sample.language_source) == ("en", "model")
    assert t.model_id == "pocketsphinx:en-us+resemblyzer+sidecar" and t.language == "en"
    assert t.turns[0].end_s == t.turns[1].start_s and abs(t.turns[0].end_s - (len(a) / SR + 0.25)) < 0.5
    assert t.words and all(0 <= w.confidence <= 1 for w in t.words)

    reason, detail = _outcome(out, 1)
    assert reason == "sidecar_disagreement" and "max_sidecar_wer 0.6" in detail

    t = _outcome(out, 2)
    assert t.model_id == "pocketsphinx:en-us+resemblyzer" and len(t.turns) == 1
    assert wer(LEOPARD, t.plain_text()) < 0.5
    # no sidecar: the recogniser's own evidence vouched for English
    ev = out[2].sample.language_evidence
    assert ev["score"] == pytest.approx(ev["acoustic_per_frame"] + 2.0 * ev["mean_confidence"], abs=1e-3)
    assert ev["score"] > -3.4 and (out[2].sample.language, out[2].sample.language_source) == ("en", "model")
    assert out[1].speakers is None and out[5].speakers is None  # rejected rows carry no voices

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


def _zh(name: str) -> np.ndarray:
    x, sr = sf.read(DATA / "zh" / name, dtype="float32")
    assert sr == SR
    return x


def test_offline_english_asr_keeps_only_speech_it_can_vouch_for(local_stage):
    """pocketsphinx cannot detect Mandarin, and transcribes it into English words: its own evidence (acoustic fit per
    frame, word confidence) must keep the English clip and refuse both Mandarin ones; a language given as one it does
    not know is refused without decoding."""
    zh = [_zh("fireredasr__BAC009S0764W0121.wav"), _zh("wenet__aishell-BAC009S0724W0121.wav")]
    arctic = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav")
    rows = [
        _row(1, arctic),
        _row(2, zh[0]),
        _row(3, zh[1]),
        _row(4, zh[1], language="en"),  # said to be English: the recogniser's transcript cannot be trusted
        _row(5, zh[1], language="de"),
        _row(6, arctic, language="en-US"),
    ]
    out = local_stage(rows)
    assert (out[0].sample.language, out[0].sample.language_source) == ("en", "model")
    assert out[0].sample.language_evidence["score"] > -3.4
    for i in (1, 2):
        reason, detail = _outcome(out, i)
        assert reason == "language_unsupported" and "cannot vouch" in detail and "< min_score -3.4" in detail
        assert out[i].reject.stage == "transcription" and out[i].sample.language_evidence["score"] < -3.4
    reason, detail = _outcome(out, 3)
    assert reason == "low_asr_confidence" and "given as 'en' (manifest)" in detail
    reason, detail = _outcome(out, 4)
    assert reason == "language_unsupported" and "'de' given by the manifest" in detail
    assert out[4].sample.language_evidence is None  # refused before decoding
    assert (out[5].sample.language, out[5].sample.language_source) == ("en", "manifest")


def test_each_utterance_is_decoded_once_and_only_kept_ones_get_speakers(local_stage, monkeypatch):
    """The words and the language evidence come from one decoder pass per utterance, and the speaker embeddings are
    computed only for the segments the language gate and the filters keep (the gate refuses the Mandarin clip), in
    one embedder call for all of them, giving each the voices it gets alone."""
    arctic = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav")
    zh = _zh("fireredasr__BAC009S0764W0121.wav")
    decoder = local_stage.transcriber.decoder
    passes, diarized = [], []
    monkeypatch.setattr(local_stage.transcriber, "decoder", _CountingDecoder(decoder, passes))
    diarize = transcription.diarize_segment
    monkeypatch.setattr(
        transcription, "diarize_segment", lambda wav, *a, **k: diarized.append(len(wav)) or diarize(wav, *a, **k)
    )
    embed, calls = local_stage.embedder.embed, []
    monkeypatch.setattr(
        local_stage.embedder, "embed", lambda clips, rate: calls.append(len(clips)) or embed(clips, rate)
    )
    out = local_stage([_row(1, arctic), _row(2, zh), _row(3, arctic[: len(arctic) // 2])])
    assert _outcome(out, 1)[0] == "language_unsupported"
    assert out[0].live and out[2].live and out[1].speakers is None
    assert passes == [len(arctic), len(zh), len(arctic) // 2]
    assert diarized == [len(arctic), len(arctic) // 2]
    assert len(calls) == 1  # both kept segments' windows and phrases
    for row in (out[0], out[2]):
        _, alone = diarize_segment(row.analysis_waveform(), SR, local_stage.embedder, local_stage.diarization)
        got = row.speakers.voices
        assert np.array_equal(got.embeddings, alone.embeddings) and np.array_equal(got.windows, alone.windows)
        assert np.array_equal(got.phrase_embeddings, alone.phrase_embeddings) and len(got.phrases) > 0


class _CountingDecoder:
    """The real decoder, recording how many samples each decoder pass (process_raw) is given."""

    def __init__(self, decoder, passes: list[int]):
        self._decoder, self._passes = decoder, passes

    def process_raw(self, pcm: bytes, *args, **kwargs):
        self._passes.append(len(pcm) // 2)
        return self._decoder.process_raw(pcm, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._decoder, name)


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
        SR * 4 + 4: ValueError("input features out of range"),
        SR * 4 + 5: "<|speaker:0|>广州市房地产中介协会分析",
        SR * 4 + 6: "<|speaker:0|>Well [kazoo] that is a strange noise to make.",
        SR * 4 + 7: "<|speaker:0|>The weather is lovely in spring and summer.",
    }
    built = []

    def build(family, spec, setting, **kwargs):
        built.append((family, spec.name, setting))
        return ScriptedOmni(answers)

    monkeypatch.setattr(transcription.registry, "build", build)
    cfg = TranscriptionConfig(
        model=ModelSpec(name="qwen3-omni"), speaker_model=None, language="en", unknown_tags="reject"
    )
    stage = TranscriptionStage(cfg)
    assert built == []  # models load at setup, not when the stage is built
    stage.setup()
    assert stage.embedder is None and built == [
        ("asr", "qwen3-omni", "transcription.model")
    ]  # the model writes speaker turns itself; no speaker model, no source-level ids
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
    assert "position 16" in _outcome(out, 1)[1] and "input features out of range" in _outcome(out, 4)[1]


def test_s2_profile_takes_the_language_from_the_model(monkeypatch):
    answers = {
        SR * 3: "<|language:de|><|speaker:0|>Guten Morgen, wie geht es dir heute?",
        SR * 3 + 1: "<|speaker:0|>Good morning, how are you today?",
        SR * 3 + 2: "<|language:fr|><|speaker:0|>Bonjour, comment allez-vous aujourd'hui ?",
        SR * 3 + 3: "<|language:fr|><|speaker:0|>Bonjour, comment allez-vous aujourd'hui ?",
    }
    monkeypatch.setattr(transcription.registry, "build", lambda *a, **k: ScriptedOmni(answers))
    stage = TranscriptionStage(TranscriptionConfig(model=ModelSpec(name="qwen3-omni"), speaker_model=None))
    stage.setup()
    rng = np.random.default_rng(1)
    languages = [None, None, "fr", "en"]
    rows = [
        _row(k, rng.standard_normal(n).astype(np.float32) * 0.05, language=lang)
        for k, (n, lang) in enumerate(zip(sorted(answers), languages))
    ]
    out = stage(rows)
    assert [(r.sample.language, r.sample.language_source) for r in out[:3]] == [
        ("de", "model"),
        (None, "unknown"),
        ("fr", "manifest"),
    ]
    assert _outcome(out, 3)[0] == "language_mismatch" and "'fr'" in _outcome(out, 3)[1]
    assert all(r.sample.language_evidence is None for r in out[:3])


def test_s2_profile_with_a_speaker_model_keeps_the_voices_of_the_model_turns(monkeypatch):
    """Qwen3-Omni's turns stay as written; the segment's voices travel with the row for source-level ids."""
    x = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav")
    answers = {len(x): "<|speaker:0|>Author of the danger trail.<|speaker:1|>Philip Steels."}
    real_build = transcription.registry.build
    monkeypatch.setattr(
        transcription.registry,
        "build",
        lambda family, spec, setting, **k: (
            ScriptedOmni(answers) if family == "asr" else real_build(family, spec, setting)
        ),
    )
    cfg = TranscriptionConfig(model=ModelSpec(name="qwen3-omni"), speaker_model=ModelSpec(name="resemblyzer"))
    stage = TranscriptionStage(cfg)
    stage.setup()
    (row,) = stage([_row(0, x)])
    t = row.sample.transcript
    assert t.render() == answers[len(x)] and t.model_id == "qwen3-omni:scripted+resemblyzer"
    voices = row.speakers.voices
    assert row.speakers.model_turns and len(voices.windows) == len(voices.embeddings) > 1
    assert voices.embeddings.shape[1] == 256 and voices.duration_s == pytest.approx(len(x) / SR)


def test_overlapped_speech_is_measured_and_rejected_before_transcription():
    t = np.arange(3 * SR) / SR
    bursts = np.sin(2 * np.pi * 1.5 * t) > 0
    two = sum(
        np.sin(k * 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR) / k
        for f0 in (120, 205)
        for k in range(1, 15)
    )
    speech = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav")
    stage = TranscriptionStage(TranscriptionConfig(max_overlap_s=0.5))
    stage.setup()
    out = stage([_row(0, speech), _row(1, (0.05 * two * bursts).astype(np.float32))])
    assert out[0].live and out[0].sample.overlap_s <= 0.5 and out[0].sample.transcript is not None
    assert out[1].reject.reason == "overlapping_speech" and "max_overlap_s 0.5" in out[1].reject.detail
    assert out[1].sample.overlap_s > 0.5
