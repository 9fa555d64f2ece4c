"""Decoded pieces travel one per block, so the model actors get them one at a time."""

import numpy as np
import pytest
import ray
import soundfile as sf

from curation.batch import COLUMNS, PCM_WIDTH
from curation.decode import decode_batch, input_rows
from pipelines.curate import configure_data_context
from schemas.config import DecodeConfig


@pytest.mark.ray
def test_each_decoded_piece_of_a_long_input_is_its_own_block(ray_session, tmp_path):
    sf.write(tmp_path / "long.wav", np.random.default_rng(0).normal(0, 0.1, 16000 * 250).astype(np.float32), 16000, subtype="PCM_16")
    rows = input_rows([{"uri": str(tmp_path / "long.wav"), "index": 0, "unit": 0}])
    configure_data_context()
    ds = ray.data.from_items(rows).map_batches(decode_batch, fn_kwargs={"cfg": DecodeConfig(piece_s=60), "sample_rate": 16000, "upsample": True}, batch_size=1, batch_format="numpy")
    blocks = [b for b in ds.iter_batches(batch_size=None, batch_format="numpy")]
    assert len(blocks) >= 5 and [list(b["piece"]) for b in blocks] == [[n] for n in range(len(blocks))]  # cut by 60 s
    assert sum(len(p) for b in blocks for p in b["pcm"]) // PCM_WIDTH == 16000 * 250 and set(blocks[0]) == set(COLUMNS)
