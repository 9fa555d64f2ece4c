"""Decoded pieces travel one per block, so the model actors get them one at a time."""

import numpy as np
import pytest
import ray
import soundfile as sf

from curation.io.plan import RunPlan
from curation.row import COLUMNS, PCM_WIDTH, from_columns
from curation.run import PlannedInputs
from curation.stages.decode import DecodeStage
from pipelines.curate import configure_data_context, decode_units
from schemas.config import CurateConfig, DecodeConfig


@pytest.mark.ray
def test_each_decoded_piece_of_a_long_input_is_its_own_block(ray_session, tmp_path):
    sf.write(
        tmp_path / "long.wav",
        np.random.default_rng(0).normal(0, 0.1, 16000 * 250).astype(np.float32),
        16000,
        subtype="PCM_16",
    )
    RunPlan.create([{"uri": str(tmp_path / "long.wav")}], CurateConfig(input="in", output="out")).save(str(tmp_path))
    inputs = PlannedInputs(str(tmp_path), RunPlan.load(str(tmp_path)), (0,))  # its inputs read where it decodes
    configure_data_context()
    stage = DecodeStage(DecodeConfig(piece_s=60), 48000, 16000)
    ds = ray.data.from_items([{"unit": 0}]).map_batches(
        decode_units, fn_kwargs={"inputs": inputs, "stage": stage}, batch_size=1, batch_format="numpy"
    )
    blocks = [b for b in ds.iter_batches(batch_size=None, batch_format="numpy")]
    assert len(blocks) >= 5 and [[r.piece for r in from_columns(b)] for b in blocks] == [
        [n] for n in range(len(blocks))
    ]  # cut by 60 s
    assert sum(len(a) for b in blocks for a in b["audio"]) // PCM_WIDTH == 16000 * 250 and set(blocks[0]) == set(
        COLUMNS
    )
    assert [r.last_piece for b in blocks for r in from_columns(b)] == [False] * (len(blocks) - 1) + [True]
