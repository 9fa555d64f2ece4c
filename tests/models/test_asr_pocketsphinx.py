from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curation.io.audio import decode_file
from models import registry
from models.asr.sphinx import PocketsphinxTranscriber
from models.checkpoints import CheckpointUnavailableError
from models.registry import UnknownModelError
from models.signal import resample
from models.wer import wer
from schemas.config import ModelSpec
from tests.conftest import DATA

SPEECH = DATA / "speech"
REFERENCE = "Mr. Quilter is the apostle of the middle classes and we are glad to welcome his gospel."


@pytest.fixture(scope="module")
def sphinx():
    return registry.build("asr", ModelSpec(name="pocketsphinx", device="cpu"), "transcription.model")


def test_transcribes_a_real_clip_with_timed_confident_words(sphinx):
    x, sr = sf.read(SPEECH / "leopard__test.wav", dtype="float32")
    # Offered at 22.05 kHz: the wrapper resamples to its native 16 kHz.
    (result,) = sphinx.transcribe([resample(x, sr, 22050)], 22050)
    t = result.transcript
    assert result.error is None and t is not None
    assert t.model_id == "pocketsphinx:en-us" and t.language == "en"
    assert [turn.speaker for turn in t.turns] == [0]
    assert wer(REFERENCE, t.plain_text()) < 0.5  # pocketsphinx gets about 0.35 here
    assert " ".join(w.word for w in t.words) == t.plain_text() == result.raw
    assert all(0.0 <= w.confidence <= 1.0 for w in t.words)
    assert np.mean([w.confidence for w in t.words]) > 0.5
    starts = [w.start_s for w in t.words]
    assert starts == sorted(starts) and all(w.start_s < w.end_s <= len(x) / sr + 0.05 for w in t.words)
    assert not any("(" in w.word or w.word.startswith(("<", "[")) for w in t.words)  # no fillers, no variant marks


def test_other_languages_are_an_error_not_a_guess(sphinx):
    (result,) = sphinx.transcribe([np.zeros(8000, np.float32)], 16000, language="zh")
    assert result.transcript is None and "English only" in result.error


def test_digital_silence_is_empty_not_a_hallucinated_word(sphinx):
    (result,) = sphinx.transcribe([np.zeros(2 * 16000, np.float32)], 16000)
    assert result.transcript is None and result.raw == "" and "empty output" in result.error


def test_unknown_name_and_missing_model_files_fail_fast(tmp_path):
    with pytest.raises(UnknownModelError, match=r"transcription\.model\.name: unknown asr model 'whisper-xl'"):
        registry.preflight("asr", ModelSpec(name="whisper-xl"), "transcription.model")
    with pytest.raises(CheckpointUnavailableError, match="hmm=.*transcription.model.options.hmm"):
        registry.preflight(
            "asr", ModelSpec(name="pocketsphinx", options={"hmm": str(tmp_path / "absent")}), "transcription.model"
        )
    with pytest.raises(CheckpointUnavailableError, match="hmm="):
        PocketsphinxTranscriber.from_spec(ModelSpec(name="pocketsphinx", options={"hmm": str(tmp_path / "absent")}))


@pytest.mark.parametrize(
    "options, error",
    [
        ({"beem": 1e-40}, r"transcription\.model\.options\.beem: not a pocketsphinx option \(hmm, lm, dict, beam, "),
        ({"beam": 2.0}, r"transcription\.model\.options\.beam=2\.0: must be a probability in \(0, 1\]"),
        ({"maxhmmpf": 2.5}, r"options\.maxhmmpf=2\.5: must be an integer"),
        ({"fwdflat": "no"}, r"options\.fwdflat='no': must be true or false"),
    ],
)
def test_search_settings_are_checked_at_start(options, error):
    with pytest.raises(ValueError, match=error):
        registry.preflight("asr", ModelSpec(name="pocketsphinx", options=options), "transcription.model")


def test_search_settings_reach_the_decoder():
    spec = ModelSpec(name="pocketsphinx", options={"maxhmmpf": 1500, "beam": "1e-40", "fwdflat": False})
    config = PocketsphinxTranscriber.from_spec(spec).decoder.config
    assert (config["maxhmmpf"], config["beam"], config["fwdflat"]) == (1500, pytest.approx(1e-40), False)


def test_the_model_folder_is_found_where_pocketsphinx_finds_it():
    import pocketsphinx

    from models.asr.sphinx import model_root

    assert model_root() == Path(pocketsphinx.get_model_path())


def test_an_utterance_gets_the_same_transcript_whatever_the_decoder_heard_before(sphinx):
    """The decoder adapts noise and feature statistics from one utterance to the next unless told otherwise: the same
    clip must come out the same (words and confidences) first, last, or alone."""
    clips = [decode_file(str(p), 16000).audio for p in sorted((DATA / "speech").glob("*.wav"))[:4]]
    forward = sphinx.transcribe(clips, 16000)
    backward = sphinx.transcribe(clips[::-1], 16000)[::-1]
    alone = [sphinx.transcribe([c], 16000)[0] for c in clips]
    for a, b, c in zip(forward, backward, alone):
        assert a.transcript.words == b.transcript.words == c.transcript.words
