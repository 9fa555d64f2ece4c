"""Our codec against the reference's own outputs (tests/data/golden/codec, written by `python -m scripts.make_s2_golden
codec` from fish-speech at the pinned commit): the reference's weights loaded through our loader give the same
continuous encoder latents (before the quantizer: the encoder transformer's window acts there, even where no code
changes), identical codes and the same audio within 1e-4, for a tiny config and for the released structure at reduced
width."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from models.codec import CodecConfig, S2Codec
from models.codec.checkpoint import RandomWeightsWarning, release_key
from models.codec.model import S2CodecModel
from schemas.config import ModelSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "codec"


@pytest.fixture(scope="module", params=["tiny", "reduced"])
def golden(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        codec = S2Codec.from_spec(ModelSpec(name="s2-codec", checkpoint=str(GOLDEN / request.param), device="cpu"))
    io = dict(np.load(GOLDEN / request.param / "io.npz"))
    count = sum(k.startswith("input_") for k in io)
    return (
        codec,
        [io[f"input_{i}"] for i in range(count)],
        [io[f"codes_{i}"] for i in range(count)],
        [io[f"audio_{i}"] for i in range(count)],
        io,
    )


def test_the_fixtures_exercise_the_codebook_search(golden):
    _, inputs, codes, _, _ = golden
    assert len({len(x) % 2048 for x in inputs}) > 1  # lengths on and off the frame grid
    for row in np.concatenate(codes, axis=1):
        assert len(np.unique(row)) > 1


def test_codes_equal_the_reference(golden):
    codec, inputs, codes, _, _ = golden
    ours = codec.encode(inputs, 44100)
    for got, want in zip(ours, codes):
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, want)


def test_encoder_latents_match_the_reference(golden):
    codec, inputs, _, _, io = golden
    frame = codec.frame_length
    for i, x in enumerate(inputs):
        padded = torch.from_numpy(np.pad(x, (0, -len(x) % frame)))[None, None]
        with torch.no_grad():
            ours = codec.model.encoder(padded)[0].numpy()
        want = io[f"latents_{i}"]
        assert ours.shape == want.shape
        np.testing.assert_allclose(ours, want, rtol=0, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_decoded_audio_matches_the_reference(golden):
    codec, _, codes, audio, io = golden
    ours = codec.decode([*codes, io["random_codes"]])
    for got, want in zip(ours, [*audio, io["random_audio"]]):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_the_released_config_has_the_released_layout():
    with gzip.open(GOLDEN / "released_layout.tsv.gz", "rt") as f:
        want = [tuple(line.rstrip("\n").split("\t")) for line in f]
    with torch.device("meta"):
        model = S2CodecModel(CodecConfig())
    got = [(release_key(k), ",".join(map(str, v.shape))) for k, v in model.state_dict().items()]
    assert got == want
