"""The data path: shards -> samples in the inference layout with references -> packed rows, streams, resume, S3."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from models.dual_ar.prompt import WITHOUT_REFERENCE, Reference, build_prompt
from schemas.training import DataConfig
from tests.training.tiny import CODES, N, make_samples, npy, sample_record, write_shards
from training.data import IGNORE, DataError, Loader, Stream, read_shard, shard_urls


def loader(index, tokenizer, state=None, micro_batch: int = 1, rank: int = 0, world: int = 1, **data) -> Loader:
    tok, ids = tokenizer
    config = DataConfig(**{"index": str(index), "seq_len": 160, "shuffle_buffer": 4, "num_workers": 0, **data})
    return Loader(config, tok, ids, N, micro_batch, rank, world, state=state)


def segments(batch, row: int = 0) -> list[slice]:
    ids = batch.segment_ids[row]
    return [
        slice(int(idx[0]), int(idx[-1]) + 1)
        for s in ids.unique().tolist()
        if s != 0
        for idx in [(ids == s).nonzero()[:, 0]]
    ]


def keys_of_epoch(stream: Stream) -> list[str]:
    keys = []
    for sample, position in stream.samples(None):
        if position["epoch"] > 0:
            return keys
        keys.append(sample.key)
    raise AssertionError("endless stream ended")


def test_a_sample_is_the_inference_prompt_with_a_reference_of_its_source_and_the_eq2_mask(tmp_path, tokenizer):
    tok, ids = tokenizer
    samples = make_samples(2, sources=1)
    index = write_shards(tmp_path, samples, per_shard=2)
    batch = next(loader(index, tokenizer, seq_len=1024, shuffle_buffer=1))
    first = segments(batch)[0]
    (a, a_codes), (b, b_codes) = sorted(samples, key=lambda s: s[0].key)
    prompt = build_prompt(
        tok, ids, N, a.transcript.render(), [Reference(b.transcript.render(), b_codes)], target_codes=a_codes
    )
    torch.testing.assert_close(batch.inputs[0, :, first], prompt.tokens[:, :-1], rtol=0, atol=0)
    text = tok.decode(batch.inputs[0, 0, first][~prompt.audio_mask[:-1]])
    assert f"Text:\n{b.transcript.render()}\n\nSpeech:\n" in text  # the reference's rich text, tags and all
    assert f"<|im_start|>user\n{a.transcript.render()}<|im_end|>" in text
    # Eq. 2: learned exactly on the target codes and the final <|im_end|>; masked labels are what the model trains on
    learned = batch.loss_mask[0, first]
    assert int(learned.sum()) == a_codes.shape[1] + 1
    assert batch.labels[0, 0, first][learned][-1] == ids.im_end
    assert not learned[: -a_codes.shape[1] - 1].any()
    torch.testing.assert_close(batch.masked_labels()[0, :, first], prompt.training_pair()[1], rtol=0, atol=0)


def test_references_come_from_the_same_speaker_else_the_same_source_else_none(tmp_path):
    codes = np.zeros((N, 3), dtype=np.int16)
    records = [
        (sample_record("k0_00000", "/in/a.wav", "<|speaker:0|>alpha", speaker="ann"), codes),
        (sample_record("k1_00000", "/in/b.wav", "<|speaker:0|>bravo", speaker="ann"), codes),
        (sample_record("k2_00000", "/in/a.wav", "<|speaker:0|>charlie"), codes),
        (sample_record("k3_00000", "/in/c.wav", "<|speaker:0|>delta"), codes),
        (sample_record("k4_00000", "/in/c.wav", "<|speaker:0|>echo"), codes),
    ]
    index = write_shards(tmp_path, records, per_shard=5)
    [url] = shard_urls(DataConfig(index=str(index)))
    got = read_shard(url, N, CODES, references=True, seed=0, epoch=0, counts=Counter())
    refs = {s.key: s.reference[0] if s.reference else None for s in got}
    assert refs == {
        "k0_00000": "<|speaker:0|>bravo",  # same speaker, another source
        "k1_00000": "<|speaker:0|>alpha",
        "k2_00000": None,  # its source's other segment belongs to a named speaker; nobody else is left
        "k3_00000": "<|speaker:0|>echo",  # no speaker: same source
        "k4_00000": "<|speaker:0|>delta",
    }
    tok_free = read_shard(url, N, CODES, references=False, seed=0, epoch=0, counts=Counter())
    assert all(s.reference is None for s in tok_free)


def test_a_sample_without_a_reference_gets_the_plain_system_turn(tmp_path, tokenizer):
    tok, _ = tokenizer
    index = write_shards(tmp_path, make_samples(1), per_shard=1)
    batch = next(loader(index, tokenizer, seq_len=512))
    assert tok.decode(batch.inputs[0, 0, :60]).startswith(f"<|im_start|>system\n{WITHOUT_REFERENCE}<|im_end|>")


def test_unusable_samples_are_skipped_and_counted(tmp_path, tokenizer):
    good = make_samples(6, seed=1)
    records = [
        good[0],
        (good[1][0], None),  # no codes
        (good[2][0], good[2][1][:2]),  # 2 codebooks instead of 4
        (good[3][0], np.full((N, 3), CODES, dtype=np.int16)),  # a code outside the codebook
        (good[4][0], np.zeros((N, 200), dtype=np.int16)),  # longer than a row
        good[5],
    ]
    index = write_shards(tmp_path, records, per_shard=6)
    shard = tmp_path / "shards" / "shard-000000-000.tar"
    disagreeing = {**json.loads(good[0][0].model_dump_json()), "key": "zy_00000", "codec": {"frames": 99}}
    with tarfile.open(shard, "a") as tar:  # a record whose JSON is cut short, one whose codec counted other frames
        for name, data in (
            ("zy_00000.json", json.dumps(disagreeing).encode()),
            ("zy_00000.codes.npy", npy(good[0][1])),
            ("zz_00000.json", b'{"key": "zz_00000", "tran'),
            ("zz_00000.codes.npy", npy(good[0][1])),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = loader(index, tokenizer, seq_len=160, shuffle_buffer=6, references=False)
    seen = sum(next(data).samples for _ in range(4))
    assert seen == 4  # two usable samples per epoch, two epochs
    skipped = data.skipped()  # per epoch read: 1 without codes, 3 with bad codes, 1 bad record, 1 too long
    assert set(skipped) == {"skipped_no_codes", "skipped_bad_codes", "skipped_bad_record", "skipped_too_long"}
    assert skipped["skipped_no_codes"] >= 2 and skipped["skipped_too_long"] >= 2
    assert skipped["skipped_bad_codes"] == 3 * skipped["skipped_no_codes"] == 3 * skipped["skipped_bad_record"]


def test_packed_rows_hold_whole_samples_in_their_own_segments_and_pad_the_rest(shards, tokenizer):
    _, ids = tokenizer
    data = loader(shards, tokenizer, micro_batch=2, seq_len=400, references=False)
    batch = next(data)
    assert batch.inputs.shape == (2, N + 1, 400) and batch.segment_ids.shape == (2, 400)
    for row in range(2):
        segs = segments(batch, row)
        assert len(segs) >= 2 and segs[0].start == 0
        assert all(a.stop == b.start for a, b in zip(segs, segs[1:]))  # contiguous, in order
        pad = batch.segment_ids[row] == 0
        assert int(pad.sum()) == 400 - segs[-1].stop
        assert (batch.inputs[row, 0, pad] == ids.pad).all() and (batch.labels[row, :, pad] == IGNORE).all()
        assert not batch.loss_mask[row, pad].any()
        for s in segs:  # each segment is one sample: it starts with the system turn and ends on <|im_end|>
            assert batch.inputs[row, 0, s.start] == ids.im_start
            assert batch.labels[row, 0, s.stop - 1] == ids.im_end and batch.loss_mask[row, s.stop - 1]
    assert batch.samples == sum(len(segments(batch, r)) for r in range(2))


@pytest.mark.parametrize("n_shards", [4, 1])
def test_streams_split_every_epoch_into_disjoint_parts_that_cover_it(tmp_path, n_shards):
    index = write_shards(tmp_path, make_samples(16), per_shard=16 // n_shards)
    urls = shard_urls(DataConfig(index=str(index)))
    config = DataConfig(index=str(index), shuffle_buffer=3)
    parts = [keys_of_epoch(Stream(urls, config, s, 3, N, CODES)) for s in range(3)]
    assert sorted(k for p in parts for k in p) == sorted(r.key for r, _ in make_samples(16))
    assert all(len(p) >= 3 for p in parts)


def test_shuffling_is_seeded_and_changes_every_epoch(shards):
    urls = shard_urls(DataConfig(index=str(shards)))

    def two_epochs(seed: int) -> list[str]:
        stream = Stream(urls, DataConfig(index=str(shards), seed=seed), 0, 1, N, CODES).samples(None)
        return [next(stream)[0].key for _ in range(32)]

    first = two_epochs(0)
    assert first == two_epochs(0)
    assert first != two_epochs(1)
    assert sorted(first[:16]) == sorted(first[16:]) and first[:16] != first[16:]


@pytest.mark.parametrize("workers, taken", [(0, 3), (2, 3), (2, 4)])
def test_a_loader_restarted_from_its_state_continues_with_the_same_batches(shards, tokenizer, workers, taken):
    straight = loader(shards, tokenizer, num_workers=workers, micro_batch=2)
    before = [next(straight) for _ in range(taken)]
    state = straight.state_dict()
    expected = [next(straight) for _ in range(4)]
    resumed = loader(shards, tokenizer, state=state, num_workers=workers, micro_batch=2)
    for want, got in zip(expected, [next(resumed) for _ in range(4)]):
        assert torch.equal(want.inputs, got.inputs) and torch.equal(want.loss_mask, got.loss_mask)
        assert torch.equal(want.segment_ids, got.segment_ids)
    assert before[-1].position != expected[-1].position


def test_one_process_with_two_loader_workers_sees_the_batches_of_two_ranks(shards, tokenizer):
    one = loader(shards, tokenizer, num_workers=2)
    rank0, rank1 = (loader(shards, tokenizer, rank=r, world=2) for r in range(2))
    for _ in range(3):
        assert torch.equal(next(one).inputs, next(rank0).inputs)
        assert torch.equal(next(one).inputs, next(rank1).inputs)


def test_a_state_from_another_number_of_streams_is_refused_in_one_line(shards, tokenizer):
    state = loader(shards, tokenizer, num_workers=0).state_dict()
    with pytest.raises(DataError, match=r"^the checkpoint's data position has 1 streams .* this run has 2$"):
        loader(shards, tokenizer, state=state, num_workers=2)


def test_a_missing_index_is_one_line(tmp_path, tokenizer):
    with pytest.raises(DataError, match=r"^data.index .*index.json: cannot read a wids shard list \(FileNotFoundError"):
        loader(tmp_path / "index.json", tokenizer)


def test_shards_stream_from_s3_as_from_disk(s3_server, bucket, shards, tokenizer):
    import boto3

    client = boto3.client("s3")
    root = Path(shards).parent
    for path in [shards, *sorted((root / "shards").iterdir())]:
        client.put_object(Bucket=bucket, Key=f"run/{path.relative_to(root)}", Body=path.read_bytes())
    local, remote = loader(shards, tokenizer), loader(f"s3://{bucket}/run/index.json", tokenizer)
    for _ in range(5):
        assert torch.equal(next(local).inputs, next(remote).inputs)


def test_packed_samples_do_not_see_each_other_through_the_data_path(shards, tokenizer, tiny_model):
    """Perturbing the first sample of a packed row leaves the second one's logits as they were, and those are its
    logits alone in a row: no attention across samples, positions restarting at each."""
    batch = next(loader(shards, tokenizer, seq_len=512, references=False))
    first, second = segments(batch)[:2]
    labels = batch.masked_labels()
    perturbed = batch.inputs.clone()
    perturbed[0, 0, first][~batch.loss_mask[0, first]] = 120  # every text token of the first sample -> 'x'
    perturbed[0, 1:, first] = (perturbed[0, 1:, first] + 3) % CODES
    alone = slice(0, second.stop - second.start)
    with torch.no_grad():
        out = tiny_model(batch.inputs, labels, segment_ids=batch.segment_ids)
        other = tiny_model(perturbed, labels, segment_ids=batch.segment_ids)
        solo = tiny_model(batch.inputs[:, :, second], labels[:, :, second])
    assert not torch.allclose(out.token_logits[0, first], other.token_logits[0, first])
    torch.testing.assert_close(other.token_logits[0, second], out.token_logits[0, second], rtol=0, atol=0)
    torch.testing.assert_close(solo.token_logits[0, alone], out.token_logits[0, second], rtol=1e-5, atol=1e-5)
    frames = tiny_model.is_semantic(labels[0, 0])
    before_second = int(frames[: second.start].sum())
    n_second = int(frames[second].sum())
    torch.testing.assert_close(
        other.codebook_logits[before_second : before_second + n_second],
        out.codebook_logits[before_second : before_second + n_second],
        rtol=0,
        atol=0,
    )
    torch.testing.assert_close(
        solo.codebook_logits, out.codebook_logits[before_second : before_second + n_second], rtol=1e-5, atol=1e-5
    )
