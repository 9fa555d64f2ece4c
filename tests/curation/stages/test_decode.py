import numpy as np
import pytest
import soundfile as sf

from curation.stages.decode import DecodeStage, InputNotOnNodeError, input_rows
from schemas.config import DecodeConfig

STAGE_REASONS = ("unreadable_container", "non_finite_samples", "no_audio_stream", "too_short")


def _decode(rows, cfg: DecodeConfig, rate: int, analysis_rate: int | None = 16000):
    stage = DecodeStage(cfg, rate, analysis_rate)
    stage.setup()
    return stage(rows)


def test_decode_stage_rejects_rows_without_raising(bad_inputs):
    root, expected = bad_inputs
    items = [{"uri": str(root / n), "index": i, "unit": 0} for i, n in enumerate(sorted(expected))]
    out = _decode(input_rows(items), DecodeConfig(), 16000)
    assert len(out) == len(items) and all(r.last_piece for r in out)

    for row in out:
        name = row.source_uri.rsplit("/", 1)[1]
        want = expected[name] if expected[name] in STAGE_REASONS else None
        assert (row.reject.reason if row.reject else None) == want, name
        assert row.reject is None or row.reject.stage == "decode"
        assert bool(row.audio) == (want is None)


def test_a_failure_after_the_first_piece_keeps_it_and_rejects_the_rest(tmp_path):
    sr = 16000
    x = np.random.default_rng(1).normal(0, 0.1, 100 * sr).astype(np.float32)
    x[-sr:] = np.nan  # the last second is broken: found only after the first piece (cut by 90 s) has gone
    sf.write(tmp_path / "late.wav", x, sr, subtype="FLOAT")
    rows = input_rows([{"uri": str(tmp_path / "late.wav"), "index": 0, "unit": 0}])
    out = _decode(rows, DecodeConfig(piece_s=60), sr)
    assert [r.piece for r in out] == [0, 1] and [r.last_piece for r in out] == [False, True]
    assert out[0].live and out[0].n_samples >= 30 * sr
    assert out[1].reject.reason == "non_finite_samples" and out[1].audio == b""


def test_stream_yields_each_piece_before_the_next_is_decoded(tmp_path):
    sr = 16000
    sf.write(
        tmp_path / "long.wav",
        np.random.default_rng(3).normal(0, 0.1, 200 * sr).astype(np.float32),
        sr,
        subtype="PCM_16",
    )
    stage = DecodeStage(DecodeConfig(piece_s=60), sr)
    pieces = stage.stream(input_rows([{"uri": str(tmp_path / "long.wav"), "index": 0, "unit": 0}]))
    first = next(pieces)
    assert first.piece == 0 and not first.last_piece and first.source.offset_s == 0.0
    rest = list(pieces)
    assert [r.piece for r in rest] == list(range(1, len(rest) + 1)) and rest[-1].last_piece and len(rest) >= 2
    assert sum(r.n_samples for r in [first, *rest]) == 200 * sr
    assert [r.source.offset_s for r in rest] == pytest.approx(
        np.cumsum([first.n_samples] + [r.n_samples for r in rest[:-1]]) / sr
    )


@pytest.mark.parametrize(("source_rate", "row_rate"), [(16000, 16000), (44100, 44100), (96000, 48000)])
def test_decode_keeps_the_full_band_up_to_the_cap_and_makes_the_analysis_copy(tmp_path, source_rate, row_rate):
    x = np.random.default_rng(2).normal(0, 0.1, 3 * source_rate).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, source_rate, subtype="PCM_16")
    rows = input_rows([{"uri": str(tmp_path / "x.wav"), "index": 0, "unit": 0}])
    (out,) = _decode(rows, DecodeConfig(), 48000)
    assert out.sample_rate == row_rate and abs(out.n_samples - 3 * row_rate) <= 1
    assert out.source.audio.sample_rate == source_rate
    assert out.analysis_rate == 16000 and abs(len(out.analysis_waveform()) - 3 * 16000) <= 1
    assert (out.analysis == b"") == (row_rate == 16000)  # no copy of audio already at the analysis rate
    (separated_later,) = _decode(rows, DecodeConfig(), 48000, analysis_rate=None)  # separation makes the copy
    assert separated_later.analysis == b"" and separated_later.audio == out.audio


def test_a_sidecar_is_read_at_decode_and_rows_carry_what_came_with_the_input(tmp_path):
    sf.write(tmp_path / "a.wav", np.random.default_rng(4).normal(0, 0.1, 16000).astype(np.float32), 16000)
    (tmp_path / "a.txt").write_text("  hello there \n")
    items = [
        {"uri": str(tmp_path / "a.wav"), "index": 0, "unit": 0, "sidecar_uri": str(tmp_path / "a.txt")},
        {"uri": str(tmp_path / "a.wav"), "index": 1, "unit": 1, "text": "given", "speaker": "s1", "language": "en"},
    ]
    rows = input_rows(items)
    assert [(r.input_index, r.unit, r.live, r.audio) for r in rows] == [(0, 0, True, b""), (1, 1, True, b"")]
    side, given = _decode(rows, DecodeConfig(), 16000)
    assert side.source.text == "hello there" and side.source.sidecar_uri is None
    assert (given.source.text, given.source.speaker, given.source.language) == ("given", "s1", "en")


def test_a_missing_file_is_a_reject_but_a_missing_input_folder_stops_the_run(tmp_path):
    """A file gone from a folder this node sees vanished since listing (its own reject); a folder this node does not
    see at all means the inputs are not on shared storage: no point rejecting every input as missing."""
    gone, elsewhere = tmp_path / "gone.wav", tmp_path / "not-mounted-here" / "x.wav"
    (row,) = _decode(input_rows([{"uri": str(gone), "index": 0, "unit": 0}]), DecodeConfig(), 16000)
    assert row.reject.reason == "missing_file"
    with pytest.raises(InputNotOnNodeError, match=r"not visible on node .*put the inputs on storage every node mounts"):
        _decode(input_rows([{"uri": str(elsewhere), "index": 0, "unit": 0}]), DecodeConfig(), 16000)
