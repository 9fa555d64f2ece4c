"""Audio into the rewards: request payloads decoded (WAV, FLAC, PCM), and every way a waveform cannot be scored
named as the reason."""

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from models.rewards import audio
from schemas.rewards import AudioLimits, PcmAudio
from tests.models.rewards.cases import SR, clip

LIMITS = AudioLimits(max_seconds=10)


def _file(x: np.ndarray, sr: int, fmt: str, subtype: str) -> str:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return base64.b64encode(buf.getvalue()).decode()


def test_wav_flac_and_pcm_decode_to_the_same_samples():
    x = clip("aew_a0001")
    pcm16 = np.round(x * 32768).clip(-32768, 32767).astype("<i2")
    as16 = pcm16.astype(np.float32) / 32768
    wav, rate = audio.decode(_file(x, SR, "WAV", "FLOAT"), LIMITS)
    assert rate == SR and np.array_equal(wav[:, 0], x)  # float WAV is what the client sends: lossless
    flac, _ = audio.decode(_file(as16, SR, "FLAC", "PCM_16"), LIMITS)
    assert np.array_equal(flac[:, 0], as16)
    pcm, rate = audio.decode(PcmAudio(data=base64.b64encode(pcm16.tobytes()).decode(), sample_rate=SR), LIMITS)
    assert rate == SR and np.array_equal(pcm, as16)
    stereo = np.stack([x, np.zeros_like(x)], axis=1).astype("<f4")
    mono = audio.check(
        *audio.decode(
            PcmAudio(data=base64.b64encode(stereo.tobytes()).decode(), sample_rate=SR, encoding="f32le", channels=2),
            LIMITS,
        ),
        LIMITS,
    )
    assert np.allclose(mono, x / 2)
    assert np.array_equal(audio.check(*audio.decode(audio.encode_wav(x, SR), LIMITS), LIMITS), x)


@pytest.mark.parametrize(
    "payload, reason",
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"RIFF....WAVEfmt nonsense").decode(), "not a readable WAV or FLAC file"),
        (
            PcmAudio(data=base64.b64encode(b"\x00\x01\x02").decode(), sample_rate=SR),
            "not a whole number of 1-channel s16le frames",
        ),
        (PcmAudio(data="", sample_rate=SR), "empty"),
        (_file(np.zeros(SR, np.float32), SR, "WAV", "FLOAT"), "silent"),
        (_file(np.full(SR, np.nan, np.float32), SR, "WAV", "FLOAT"), "non-finite samples"),
        (_file(np.full(11 * 8000, 0.1, np.float32), 8000, "WAV", "FLOAT"), "11.0 s is longer than 10 s"),
        (_file(np.full(4000, 0.1, np.float32), 4000, "WAV", "FLOAT"), "sample rate 4000 Hz outside"),
    ],
)
def test_unscoreable_audio_is_named(payload, reason):
    with pytest.raises(audio.AudioError, match=reason):
        audio.check(*audio.decode(payload, LIMITS), LIMITS)


def test_integer_pcm_is_scaled_like_a_16_bit_file():
    x = (clip("aew_a0001") * 32767).astype(np.int16)
    assert np.array_equal(audio.check(x, SR, LIMITS), x.astype(np.float32) / 32768)
    assert np.array_equal(
        audio.check(*audio.decode(audio.encode_wav(x, SR), LIMITS), LIMITS), x.astype(np.float32) / 32768
    )


@pytest.mark.parametrize("data", [b"RIFF....WAVEfmt nonsense", b"hello, not audio at all"])
def test_bad_audio_is_named_without_a_python_repr(data):
    with pytest.raises(audio.AudioError) as caught:
        audio.decode(base64.b64encode(data).decode(), LIMITS)
    message = str(caught.value)
    assert message.startswith("not a readable WAV or FLAC file (") and "<" not in message and "0x" not in message
