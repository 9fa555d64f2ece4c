import io

import numpy as np
import pytest
import soundfile as sf

from curation.row import AudioEncoding, Row, from_columns, pcm_bytes, to_columns
from curation.stages.encode import EncodeStage
from schemas.rejects import RejectReason, Stage
from schemas.sample import SeparationInfo
from tests.factories import piece_row, segment_row


def test_16_bit_audio_survives_the_row_and_the_flac_bit_for_bit(tmp_path):
    ints = np.random.default_rng(0).integers(-32768, 32768, 16000, dtype=np.int16)
    sf.write(tmp_path / "x.wav", ints, 16000, subtype="PCM_16")
    x, _ = sf.read(tmp_path / "x.wav", dtype="float32")  # as decode reads it
    row = piece_row(x, 16000)
    assert row.encoding == AudioEncoding.PCM16 and row.n_samples == 16000
    assert np.array_equal(row.pcm(), ints)
    assert np.array_equal(row.waveform(), x)
    (encoded,) = EncodeStage()([row])
    assert encoded.encoding == AudioEncoding.FLAC
    flac, _ = sf.read(io.BytesIO(encoded.audio), dtype="int16")
    assert np.array_equal(flac, ints)
    with pytest.raises(ValueError, match="flac audio, not PCM"):
        encoded.pcm()


def test_loud_samples_clip_and_non_finite_ones_are_refused():
    assert np.array_equal(
        np.frombuffer(pcm_bytes(np.array([-2.0, 1.0, 0.5], np.float32)), "<i2"), [-32768, 32767, 16384]
    )
    with pytest.raises(ValueError, match="non-finite"):
        pcm_bytes(np.array([0.0, np.inf], np.float32))


def test_a_rejected_row_drops_its_audio_and_keeps_its_sample_and_span():
    segment = segment_row(np.full(8000, 0.1, np.float32), 16000, 3, segment=2, start_s=4.0)
    assert segment.live
    out = segment.rejected(Stage.QUALITY, RejectReason.QUALITY_BELOW_THRESHOLD, "x" * 3000)
    assert out is segment and not segment.live and segment.audio == b"" and segment.encoding == AudioEncoding.NONE
    r = segment.reject
    assert (r.input, r.key, r.stage, r.reason) == ("/in/3.wav", segment.key, "quality", "quality_below_threshold")
    assert (r.start_s, r.end_s) == (4.0, 4.5) and len(r.detail) == 2000 and segment.sample is not None
    # an input (a key without a segment index) is rejected as a whole: no key, no span
    piece = piece_row(np.zeros(100, np.float32), 16000).rejected(Stage.DECODE, RejectReason.TOO_SHORT, "0.01 s")
    assert piece.reject.key is None and piece.reject.start_s is None and piece.reject.end_s is None


def test_columns_round_trip_every_field_and_carry_audio_apart():
    live = segment_row(
        np.sin(np.arange(4000) / 7).astype(np.float32) * 0.3,
        22050,
        1,
        segment=4,
        start_s=1.5,
        file_rows=3,
        piece=2,
        last_piece=False,
        text="hi",
    )
    live.separation = SeparationInfo(model_id="m", chunk_s=10.0, overlap_s=1.0)
    flac = EncodeStage()([segment_row(np.full(1000, 0.2, np.float32), 16000, 2)])[0]
    rejected = piece_row(np.zeros(10, np.float32), 8000, 5).rejected(Stage.DECODE, RejectReason.TOO_SHORT, "short")
    rows = [live, flac, rejected]
    before = [r.copy() for r in rows]

    columns = to_columns(rows)
    assert set(columns) == {"audio", "encoding", "sample_rate", "analysis", "row"}
    assert (
        columns["analysis"] == [r.analysis for r in rows]
        and abs(len(columns["analysis"][0]) / 2 - 4000 * 16000 / 22050) <= 1
    )
    assert columns["audio"] == [r.audio for r in rows] and columns["encoding"] == ["pcm_s16le", "flac", ""]
    assert columns["sample_rate"] == [22050, 16000, 8000]
    assert all(isinstance(r, Row) and r.audio == r.analysis == b"" for r in columns["row"])  # audio: own columns only
    assert from_columns(columns) == before and rows == before  # and the rows given are left as they were

    # as Ray Data hands columns back: numpy arrays (bytes of fixed width, numpy integers, an object column)
    numpy_batch = {
        "audio": np.array(columns["audio"], dtype=object),
        "encoding": np.array(columns["encoding"]),
        "sample_rate": np.array(columns["sample_rate"]),
        "analysis": np.array(columns["analysis"], dtype=object),
        "row": np.array(columns["row"], dtype=object),
    }
    back = from_columns(numpy_batch)
    assert back == before
    assert all(
        type(r.audio) is bytes and type(r.sample_rate) is int and isinstance(r.encoding, AudioEncoding) for r in back
    )
    assert np.array_equal(back[0].waveform(), live.waveform())
