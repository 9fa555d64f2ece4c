"""S2Codec as users call it: batches equal items alone, any input rate, invalid input named, the windowed attention
equal to full attention under the band mask."""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.codec import CodecConfig, S2Codec
from models.codec.checkpoint import RandomWeightsWarning
from models.codec.transformer import windowed_attention
from models.signal import resample
from schemas.config import ModelSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin

REDUCED = Path(__file__).parents[1] / "data" / "golden" / "codec" / "reduced"  # the released structure, windows 8 and 2


def build(batch_size: int) -> S2Codec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return S2Codec.from_spec(
            ModelSpec(name="s2-codec", checkpoint=str(REDUCED), device="cpu", batch_size=batch_size)
        )


@pytest.fixture(scope="module")
def codec() -> S2Codec:
    return build(batch_size=8)


def test_attributes(codec):
    assert codec.model_id.startswith("s2-codec:reduced/codec.pth@") and codec.model_id.endswith("+random-init")
    assert codec.weights_sha256 == hashlib.sha256((REDUCED / "codec.pth").read_bytes()).hexdigest()
    assert codec.weights_sha256[:12] in codec.model_id
    assert (codec.sample_rate, codec.frame_rate, codec.num_codebooks) == (44100, 44100 / 2048, 10)
    assert codec.codebook_sizes == [64] + [32] * 9
    released = CodecConfig()
    assert (released.frame_length, released.num_codebooks, released.codebook_sizes) == (2048, 10, [4096] + [1024] * 9)


def test_a_batch_gives_each_item_the_codes_it_gets_alone_and_its_audio(codec):
    rng = np.random.default_rng(3)
    # one sample, around a frame, and 15 frames: past the encoder's 8-latent and the quantizer's 2-frame windows
    lengths = [1, 2047, 2048, 2049, 30000]
    waves = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    batched = codec.encode(waves, 44100)
    alone = build(batch_size=1)
    for wave, codes in zip(waves, batched):
        assert codes.shape == (10, math.ceil(len(wave) / 2048))
        np.testing.assert_array_equal(codes, alone.encode([wave], 44100)[0])
    audio = codec.decode(batched)
    for codes, out in zip(batched, audio):
        assert out.shape == (codes.shape[1] * 2048,)
        # the same computation per frame, but convolution kernels pick other algorithms for other batch sizes, and
        # this random decoder amplifies their last-bit differences about a hundredfold
        np.testing.assert_allclose(out, alone.decode([codes])[0], rtol=0, atol=1e-4)


def test_input_at_another_rate_is_resampled(codec):
    wave = (0.3 * np.random.default_rng(4).standard_normal(16000)).astype(np.float32)
    codes = codec.encode([wave], 16000)[0]
    at_44k = resample(wave, 16000, 44100)
    assert codes.shape == (10, math.ceil(len(at_44k) / 2048))
    np.testing.assert_array_equal(codes, codec.encode([at_44k], 44100)[0])


@pytest.mark.parametrize(
    "bad, problem",
    [
        (np.zeros(0, np.float32), "non-empty mono"),
        (np.full(100, np.nan, np.float32), "NaN"),
        (np.array([0.0, np.inf], np.float32), "infinite"),
        (np.zeros((2, 100), np.float32), "mono"),
    ],
    ids=["empty", "nan", "inf", "stereo"],
)
def test_invalid_audio_is_named_by_its_index(codec, bad, problem):
    with pytest.raises(ValueError, match=rf"item 1: .*{problem}"):
        codec.encode([np.zeros(100, np.float32), bad], 44100)


@pytest.mark.parametrize("row, value", [(0, 64), (3, 32), (9, -1)])
def test_codes_outside_a_codebook_are_named_not_clamped(codec, row, value):
    codes = np.zeros((10, 4), np.int16)
    codes[row, 2] = value
    with pytest.raises(
        ValueError, match=rf"item 1: codebook row {row} holds {value}, outside 0\.\.{63 if row == 0 else 31}"
    ):
        codec.decode([np.zeros((10, 4), np.int16), codes])


@pytest.mark.parametrize(
    "codes",
    [np.zeros((9, 4), np.int16), np.zeros((10, 0), np.int16), np.zeros((10, 4), np.float32)],
    ids=["rows", "empty", "float"],
)
def test_codes_of_the_wrong_shape_or_type_are_refused(codec, codes):
    with pytest.raises(ValueError, match=r"item 0: expected integer codes of shape \(10, frames >= 1\)"):
        codec.decode([codes])


def test_the_reduced_precision_path_runs():
    """The bf16 autocast a GPU spec (dtype bfloat16) gets, run on the CPU: every op accepts the mixed dtypes, codes
    are chosen in float32 and stay within their codebooks, audio comes back as float32."""
    codec = build(batch_size=2)
    codec.dtype = torch.bfloat16  # pick_dtype keeps CPUs at float32; the autocast code path is the same
    waves = [(0.3 * np.random.default_rng(5).standard_normal(n)).astype(np.float32) for n in (3000, 9000)]
    codes = codec.encode(waves, 44100)
    assert [c.shape for c in codes] == [(10, 2), (10, 5)]
    assert all((c >= 0).all() and (c[0] < 64).all() and (c[1:] < 32).all() for c in codes)
    audio = codec.decode(codes)
    assert [a.shape for a in audio] == [(2 * 2048,), (5 * 2048,)]
    assert all(a.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).max() <= 1 for a in audio)


@pytest.mark.parametrize("length", [5, 8, 9, 37])
def test_windowed_attention_equals_attention_under_the_band_mask(length):
    window = 8
    q, k, v = torch.randn(3, 2, 3, length, 16, generator=torch.Generator().manual_seed(length)).unbind(0)
    i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
    band = (j <= i) & (j > i - window)
    torch.testing.assert_close(
        windowed_attention(q, k, v, window), F.scaled_dot_product_attention(q, k, v, attn_mask=band)
    )
