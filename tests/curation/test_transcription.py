from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import curation.transcription as transcription
from curation.batch import pcm_bytes
from curation.diarization import SpeakerTurn, join_utterances, speech_span
from curation.transcription import TranscriptionStage, speaker_turns
from curation.wer import wer
from models.asr.qwen3_omni import parse_output
from schemas.config import ModelSpec, TranscriptionConfig
from schemas.sample import AudioFacts, Sample, SourceRef
from schemas.transcript import WordConfidence

SPEECH = Path(__file__).parent.parent / "data" / "speech"
SR = 16000
LEOPARD = "Mr. Quilter is the apostle of the middle classes and we are glad to welcome his gospel."
ARCTIC = {"aew_a0001": "Author of the danger trail, Philip Steels, etc.", "axb_a0004": "Lord, but I'm glad to see you again, Phil."}


def _load(name: str) -> np.ndarray:
    x, sr = sf.read(SPEECH / name, dtype="float32")
    assert sr == SR
    start, end = speech_span(x, SR)
    return x[int(start * SR):int(end * SR)]


def _row(key: str, wav: np.ndarray, text: str | None = None, file_rows: int = 1, language: str | None = None) -> dict:
    dur = len(wav) / SR
    facts = AudioFacts(sample_rate=SR, channels=1, duration_s=dur)
    s = Sample(key=f"{key}_00000", source=SourceRef(uri=f"/in/{key}.wav", start_s=0.0, end_s=dur, audio=facts, text=text, language=language), audio=facts)
    return dict(key=f"{key}_00000", input_index=0, unit=0, source_uri=f"/in/{key}.wav", pcm=pcm_bytes(wav),
                sample_rate=SR, sample_json=s.model_dump_json(exclude_none=True), reject_json="", file_rows=file_rows, meta_json="",
                piece=0, last_piece=True)


def _batch(rows: list[dict]) -> dict:
    return {k: [r[k] for r in rows] for k in rows[0]}


def _outcome(batch: dict, i: int):
    if batch["reject_json"][i]:
        rec = json.loads(batch["reject_json"][i])
        assert rec["stage"] == "transcription" or rec["reason"] == "earlier"
        return rec["reason"], rec["detail"]
    return Sample.model_validate_json(batch["sample_json"][i]).transcript


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models gain nothing from intra-op threads, and OpenMP spin-waits stall them on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_speaker_turns_by_word_time_and_by_aligned_sidecar():
    words = [WordConfidence(word=w, confidence=0.9, start_s=s, end_s=s + 0.3) for w, s in
             [("hello", 0.1), ("there", 0.5), ("fine", 1.6), ("thanks", 2.0), ("bye", 3.2)]]
    diar = [SpeakerTurn(1, 0.0, 1.2), SpeakerTurn(0, 1.2, 3.0), SpeakerTurn(1, 3.0, 4.0)]
    turns = speaker_turns(words, diar)
    assert [(t.speaker, t.text, t.start_s, t.end_s) for t in turns] == [
        (0, "hello there", 0.0, 1.2), (1, "fine thanks", 1.2, 3.0), (0, "bye", 3.0, 4.0)]
    # Sidecar tokens take the speaker of the ASR word they align with; tags and unaligned words follow their neighbours.
    turns = speaker_turns(words, diar, "Hello there! [laugh] Fine, thank you. Bye-bye")
    assert [(t.speaker, t.text) for t in turns] == [(0, "Hello there! [laugh]"), (1, "Fine, thank you."), (0, "Bye-bye")]


@pytest.fixture(scope="module")
def local_stage():
    return TranscriptionStage(TranscriptionConfig())


def test_local_profile_batch(local_stage):
    a, b = _load("pyroomacoustics__cmu_arctic_us_aew_a0001.wav"), _load("pyroomacoustics__cmu_arctic_us_axb_a0004.wav")
    dialogue, _ = join_utterances([(0, a), (1, b)], SR, pause_s=0.5)
    leopard = _load("leopard__test.wav")
    rows = [
        _row("0000000000000001", dialogue, text=f"{ARCTIC['aew_a0001']} {ARCTIC['axb_a0004']}"),
        _row("0000000000000002", leopard, text="Completely unrelated words about the weather in spring."),
        _row("0000000000000003", leopard, text=LEOPARD, file_rows=3),  # a sidecar for a longer input: not ours
        _row("0000000000000004", leopard),
        _row("0000000000000005", np.zeros(0, np.float32)),
        _row("0000000000000006", np.zeros(2 * SR, np.float32)),
        _row("0000000000000007", leopard, text="<|speaker:0|>Mr. Quilter is the apostle of the middle classes [Laughs]"
                                              "<|speaker:1|>and we are glad to welcome his [kazoo] gospel."),
        _row("0000000000000008", leopard),
    ]
    batch = _batch(rows)
    batch["reject_json"][3] = json.dumps({"input": "/in/x.wav", "stage": "quality", "reason": "earlier", "detail": ""})
    before = dict(reject=batch["reject_json"][3], sample=batch["sample_json"][3])
    batch["sample_json"][7] = "{not json"
    out = local_stage(batch)

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

    assert (out["reject_json"][3], out["sample_json"][3]) == (before["reject"], before["sample"])
    assert _outcome(out, 4)[0] == "bad_row" and "empty audio" in _outcome(out, 4)[1]
    assert _outcome(out, 5)[0] == "empty_transcript"

    t = _outcome(out, 6)  # a sidecar with its own speaker turns is kept as written
    assert t.render() == ("<|speaker:0|>Mr. Quilter is the apostle of the middle classes [laugh]"
                          "<|speaker:1|>and we are glad to welcome his [kazoo] gospel.")
    assert t.model_id == "pocketsphinx:en-us+sidecar" and t.unknown_tags == ["kazoo"]
    assert _outcome(out, 7)[0] == "bad_row" and out["pcm"][7] == b""


def test_pocketsphinx_refuses_other_languages_at_start():
    with pytest.raises(ValueError, match="transcription.language='zh'"):
        TranscriptionStage(TranscriptionConfig(language="zh"))


def test_disabled_stage_passes_rows_through_without_a_model():
    stage = TranscriptionStage(TranscriptionConfig(enabled=False, model=ModelSpec(name="no-such-model")))
    batch = _batch([_row("0000000000000001", np.zeros(SR, np.float32))])
    assert stage(batch) == batch


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
    monkeypatch.setattr(transcription, "load_transcriber", lambda spec: ScriptedOmni(answers))
    cfg = TranscriptionConfig(model=ModelSpec(name="qwen3-omni"), language="en", unknown_tags="reject")
    stage = TranscriptionStage(cfg)
    assert stage.embedder is None  # the model writes speaker turns itself
    rng = np.random.default_rng(0)
    rows = [_row(f"{k:016x}", rng.standard_normal(n).astype(np.float32) * 0.05, text="A different text entirely, nothing alike." if k == 7 else None)
            for k, n in enumerate(sorted(answers))]
    out = stage(_batch(rows))

    t = _outcome(out, 0)
    assert t.render() == answers[SR * 4] and t.model_id == "qwen3-omni:scripted" and t.language == "en"
    assert [_outcome(out, i)[0] for i in range(1, 8)] == [
        "malformed_transcript", "empty_transcript", "repeated_ngram", "transcription_failed",
        "language_mismatch", "unknown_tag", "sidecar_disagreement"]
    assert "position 16" in _outcome(out, 1)[1] and "CUDA error" in _outcome(out, 4)[1]
