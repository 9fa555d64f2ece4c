from curation.policy.diarization import SpeakerTurn
from curation.policy.turns import speaker_turns
from schemas.transcript import WordConfidence


def test_speaker_turns_by_word_time_and_by_aligned_sidecar():
    words = [WordConfidence(word=w, confidence=0.9, start_s=s, end_s=s + 0.3) for w, s in
             [("hello", 0.1), ("there", 0.5), ("fine", 1.6), ("thanks", 2.0), ("bye", 3.2)]]  # fmt: skip
    diar = [SpeakerTurn(1, 0.0, 1.2), SpeakerTurn(0, 1.2, 3.0), SpeakerTurn(1, 3.0, 4.0)]
    turns = speaker_turns(words, diar)
    assert [(t.speaker, t.text, t.start_s, t.end_s) for t in turns] == [
        (0, "hello there", 0.0, 1.2), (1, "fine thanks", 1.2, 3.0), (0, "bye", 3.0, 4.0)]  # fmt: skip
    # Sidecar tokens take the speaker of the ASR word they align with; tags and unaligned words follow their neighbours.
    turns = speaker_turns(words, diar, "Hello there! [laugh] Fine, thank you. Bye-bye")
    assert [(t.speaker, t.text) for t in turns] == [
        (0, "Hello there! [laugh]"),
        (1, "Fine, thank you."),
        (0, "Bye-bye"),
    ]
