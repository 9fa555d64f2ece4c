import numpy as np
import pytest
import soundfile as sf

from curation.io.audio import DecodeError, decode_file, iter_pieces
from tests.conftest import DATA


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "speech").iterdir()))
def test_every_corpus_format_decodes_to_mono_16k(name):
    info_rate = None if name.endswith(".mp3") else sf.info(DATA / "speech" / name).samplerate
    d = decode_file(str(DATA / "speech" / name), 16000)
    assert d.sample_rate == 16000 and d.audio.dtype == np.float32 and d.audio.ndim == 1
    assert abs(len(d.audio) / 16000 - d.facts.duration_s) < 0.01
    assert info_rate is None or d.facts.sample_rate == info_rate
    assert np.abs(d.audio).max() > 0.01


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    t = np.arange(44100 * 2) / 44100
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    sf.write(tmp_path / "s.flac", np.stack([left, right], 1) * 0.5, 44100)
    d = decode_file(str(tmp_path / "s.flac"), 16000)
    assert d.facts.channels == 2 and d.facts.sample_rate == 44100
    assert len(d.audio) == 32000
    assert abs(np.sqrt(np.mean(d.audio[1000:-1000] ** 2)) - 0.25 / np.sqrt(2)) < 0.01


def test_decode_errors_have_reasons(bad_inputs):
    root, expected = bad_inputs
    for name, reason in expected.items():
        if reason in ("unreadable_container", "non_finite_samples", "no_audio_stream"):
            with pytest.raises(DecodeError) as err:
                decode_file(str(root / name), 16000, 4 * 3600)
            assert err.value.reason == reason, name


def test_lying_header_is_not_trusted(bad_inputs):
    root, _ = bad_inputs
    d = decode_file(str(root / "lying_header.wav"), 16000, 3600)
    assert abs(len(d.audio) / 16000 - 0.5) < 0.01


def test_real_overlength_is_rejected(tmp_path):
    sf.write(tmp_path / "long.wav", np.zeros(16000 * 30, np.float32), 16000)
    with pytest.raises(DecodeError, match="too_long"):
        decode_file(str(tmp_path / "long.wav"), 16000, 10)


def test_long_audio_is_cut_into_bounded_pieces_at_quiet_points():
    sr = 1000
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, 100 * sr).astype(np.float32)
    x[47 * sr : 47 * sr + 200] = 0  # the only quiet moment in the first search window
    blocks = (x[i : i + 777] for i in range(0, len(x), 777))
    pieces, lasts = [], []
    for offset, p, last in iter_pieces(blocks, sr, piece_s=50, search_s=10):
        pieces.append((offset, p.copy()))  # a view of a buffer the next piece reuses
        lasts.append(last)
    assert lasts == [False] * (len(pieces) - 1) + [True]
    assert pieces[0][0] == 0 and 47 * sr <= len(pieces[0][1]) <= 47 * sr + 200
    assert all(len(p) <= 60 * sr for _, p in pieces)
    assert np.array_equal(np.concatenate([p for _, p in pieces]), x)
    assert [o for o, _ in pieces] == list(np.cumsum([0] + [len(p) for _, p in pieces[:-1]]))
