"""Codec-training audio: every source kind decoded once, undecodable files counted, a held-out split by key hash,
and crops that are a function of the step (the same for any split of the batch over ranks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from tests.training.codec.tiny import write_shard
from training.codec.data import CodecDataError, crop_length, crops, read_clips, split


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i, rate in enumerate((16000, 44100, 48000)):
        (root / f"d{i}").mkdir()
        soundfile.write(root / f"d{i}" / f"c{i}.wav", 0.1 * rng.standard_normal((rate // 2, 2)), rate)  # stereo
    (root / "broken.flac").write_bytes(b"not audio")
    return root


def test_folders_shards_and_an_index_decode_once_to_mono_at_the_codec_rate(folder, tmp_path):
    clips = read_clips([str(folder)], 44100)
    assert clips.keys == ["d0/c0.wav", "d1/c1.wav", "d2/c2.wav"] and dict(clips.skipped) == {"skipped_undecodable": 1}
    assert [abs(n - 22050) <= 1 for n in clips.lengths] == [True] * 3  # half a second each, resampled
    shard = write_shard(tmp_path / "data", seconds=0.5)
    index = tmp_path / "data" / "index.json"
    index.write_text(json.dumps({"shardlist": [{"url": shard.name, "nsamples": 3}]}))
    from_shard, from_index = read_clips([str(shard)], 44100), read_clips([str(index)], 44100)
    assert from_shard.keys == from_index.keys == ["clip00_00000", "clip01_00000", "clip02_00000"]
    assert np.array_equal(from_shard.clip(1), from_index.clip(1)) and from_shard.clip(1).dtype == np.float32


def test_sources_without_audio_stop_in_one_line(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CodecDataError, match="no decodable audio"):
        read_clips([str(tmp_path / "empty")], 44100)
    with pytest.raises(CodecDataError, match="not a .tar shard"):
        read_clips([str(tmp_path / "missing.txt")], 44100)


def test_the_held_out_split_depends_on_keys_not_order(folder):
    clips = read_clips([str(folder)], 44100)
    train, held = split(clips, 1)
    reordered = clips.subset([2, 0, 1])
    train2, held2 = split(reordered, 1)
    assert held.keys == held2.keys and sorted(train.keys) == sorted(train2.keys) and len(train.keys) == 2
    with pytest.raises(CodecDataError, match="data.heldout_clips"):
        split(clips, 3)


def test_crops_are_a_function_of_the_step_whatever_the_split_over_ranks(folder):
    clips = read_clips([str(folder)], 44100)
    length = crop_length(0.1, 44100, 2048)
    assert length == 4096
    whole = crops(clips, 7, range(0, 4), length, seed=0)
    halves = np.concatenate([crops(clips, 7, range(0, 2), length, 0), crops(clips, 7, range(2, 4), length, 0)])
    assert np.array_equal(whole, halves) and np.abs(whole).sum() > 0
    assert not np.array_equal(whole, crops(clips, 8, range(0, 4), length, 0))
    long = crops(clips, 7, range(0, 1), 2 * 22050, 0)[0]  # longer than any clip: zero-padded at the end
    assert np.all(long[22052:] == 0)
