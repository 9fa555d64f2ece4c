import json

import numpy as np
import pytest
import soundfile as sf

from curation.audio import DecodeError, decode_file, iter_pieces
from curation.batch import PCM_WIDTH
from curation.decode import DecodeStage, input_rows
from schemas.config import DecodeConfig
from tests.badfiles import make_bad_inputs
from tests.conftest import DATA


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    return root, make_bad_inputs(root)


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


def test_decode_errors_have_reasons(bad_dir):
    root, expected = bad_dir
    for name, reason in expected.items():
        if reason in ("unreadable_container", "non_finite_samples", "no_audio_stream"):
            with pytest.raises(DecodeError) as err:
                decode_file(str(root / name), 16000, 4 * 3600)
            assert err.value.reason == reason, name


def test_lying_header_is_not_trusted(bad_dir):
    root, _ = bad_dir
    d = decode_file(str(root / "lying_header.wav"), 16000, 3600)
    assert abs(len(d.audio) / 16000 - 1.0) < 0.01


def test_real_overlength_is_rejected(tmp_path):
    sf.write(tmp_path / "long.wav", np.zeros(16000 * 30, np.float32), 16000)
    with pytest.raises(DecodeError, match="too_long"):
        decode_file(str(tmp_path / "long.wav"), 16000, 10)


def test_decode_stage_rejects_rows_without_raising(bad_dir):
    root, expected = bad_dir
    items = [{"uri": str(root / n), "index": i, "unit": 0} for i, n in enumerate(sorted(expected))]
    rows = input_rows(items)
    parts = list(DecodeStage(DecodeConfig(), 16000)({k: [r[k] for r in rows] for k in rows[0]}))
    out = {k: [v for p in parts for v in p[k]] for k in parts[0]}
    assert len(out["key"]) == len(items) and all(out["last_piece"])

    for uri, rej, pcm in zip(out["source_uri"], out["reject_json"], out["pcm"]):
        name = uri.rsplit("/", 1)[1]
        want = expected[name] if expected[name] in ("unreadable_container", "non_finite_samples", "no_audio_stream", "too_short") else None
        assert (json.loads(rej)["reason"] if rej else None) == want, name
        assert bool(pcm) == (want is None)


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


def test_a_failure_after_the_first_piece_keeps_it_and_rejects_the_rest(tmp_path):
    sr = 16000
    x = np.random.default_rng(1).normal(0, 0.1, 100 * sr).astype(np.float32)
    x[-sr:] = np.nan  # the last second is broken: found only after the first piece (cut by 90 s) has gone
    sf.write(tmp_path / "late.wav", x, sr, subtype="FLOAT")
    row = input_rows([{"uri": str(tmp_path / "late.wav"), "index": 0, "unit": 0}])[0]
    parts = list(DecodeStage(DecodeConfig(piece_s=60), sr)({c: [row[c]] for c in row}))
    out = {k: [v for p in parts for v in p[k]] for k in parts[0]}
    assert out["piece"] == [0, 1] and out["last_piece"] == [False, True]
    assert not out["reject_json"][0] and len(out["pcm"][0]) // PCM_WIDTH >= 30 * sr
    assert json.loads(out["reject_json"][1])["reason"] == "non_finite_samples" and out["pcm"][1] == b""


@pytest.mark.parametrize(("source_rate", "upsample", "row_rate"), [(16000, False, 16000), (48000, False, 44100), (16000, True, 44100)])
def test_decode_upsamples_only_when_asked(tmp_path, source_rate, upsample, row_rate):
    # a separator resamples what it gets: a 16 kHz source then travels at 16 kHz, never above its own rate
    x = np.random.default_rng(2).normal(0, 0.1, 3 * source_rate).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, source_rate, subtype="PCM_16")
    row = input_rows([{"uri": str(tmp_path / "x.wav"), "index": 0, "unit": 0}])[0]
    (out,) = DecodeStage(DecodeConfig(), 44100, upsample)({c: [row[c]] for c in row})
    assert out["sample_rate"] == [row_rate] and abs(len(out["pcm"][0]) // PCM_WIDTH - 3 * row_rate) <= 1
    assert json.loads(out["meta_json"][0])["audio"]["sample_rate"] == source_rate
