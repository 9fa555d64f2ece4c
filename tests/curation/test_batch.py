import io

import numpy as np
import pytest
import soundfile as sf

from curation.batch import audio, pcm_bytes, pcm_samples
from curation.shards import encode_audio


def test_16_bit_audio_survives_the_row_and_the_flac_bit_for_bit(tmp_path):
    ints = np.random.default_rng(0).integers(-32768, 32768, 16000, dtype=np.int16)
    sf.write(tmp_path / "x.wav", ints, 16000, subtype="PCM_16")
    x, _ = sf.read(tmp_path / "x.wav", dtype="float32")  # as decode reads it
    batch = {"pcm": [pcm_bytes(x)], "sample_rate": [16000], "reject_json": [""]}
    assert np.array_equal(pcm_samples(batch, 0), ints)
    assert np.array_equal(audio(batch, 0), x)
    flac, _ = sf.read(io.BytesIO(encode_audio(batch)["pcm"][0]), dtype="int16")
    assert np.array_equal(flac, ints)


def test_loud_samples_clip_and_non_finite_ones_are_refused():
    assert np.array_equal(np.frombuffer(pcm_bytes(np.array([-2.0, 1.0, 0.5], np.float32)), "<i2"), [-32768, 32767, 16384])
    with pytest.raises(ValueError, match="non-finite"):
        pcm_bytes(np.array([0.0, np.inf], np.float32))
