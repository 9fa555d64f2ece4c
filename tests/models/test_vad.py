"""silero-vad's wrapper: a short waveform runs at its own length, with the probabilities it would get padded."""

import numpy as np
import soundfile as sf

from models.signal import resample
from models.vad import FRAME, PREROLL_FRAMES, SileroVad
from schemas.config import ModelSpec
from tests.conftest import EXAMPLES


def test_short_waveform_runs_at_its_own_length_with_unchanged_probabilities():
    vad = SileroVad(ModelSpec(name="silero-vad", batch_size=1), piece_s=30.0)
    x, rate = sf.read(sorted(EXAMPLES.glob("*.wav"))[0], dtype="float32", always_2d=True)
    w = resample(x[: int(1.5 * rate), 0], rate, 16000)  # at silero's rate: no resampler edge at the cut
    rate = 16000
    shapes = []
    forward = vad.model.audio_forward
    vad.model.audio_forward = lambda batch, sr: shapes.append(tuple(batch.shape)) or forward(batch, sr)
    probs = vad.speech_probs([w], rate)[0]
    frames = -(-len(w) // FRAME)
    assert shapes == [(1, (PREROLL_FRAMES + frames) * FRAME)]  # not the 30 s piece
    # the same frames as the first of two whole pieces (the former way): the same probabilities, up to the rounding
    # of a batch of two
    vad.model.audio_forward = forward
    long = vad.speech_probs([np.concatenate([w, np.zeros(40 * rate, np.float32)])], rate)[0]
    np.testing.assert_allclose(probs, long[: len(probs)], atol=1e-5)
    assert len(probs) == frames
