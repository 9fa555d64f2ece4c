"""Dialogue samples: consecutive segments of a 2-speaker conversation joined into one sample with their speaker
turns, the gaps between them, and one reference voice per speaker."""

from __future__ import annotations

from collections import Counter

import numpy as np

from schemas.sample import AudioFacts, Sample, SourceRef
from schemas.transcript import RichTranscript
from tests.training.tiny import CODES, N, tiny_config, write_shards
from training.data import build_example, read_shard, shard_urls

# (speaker, start, end, words): A and B take turns; a long gap before the 3rd and the 6th turn
TALK = [
    ("alice", 0.0, 1.0, "hello there"),
    ("bob", 1.1, 2.0, "hi alice"),
    ("alice", 3.0, 4.0, "how are you"),
    ("bob", 4.2, 5.0, "fine thanks"),
    ("alice", 5.1, 6.0, "good to hear"),
    ("bob", 7.0, 8.0, "see you"),
]


def conversation(folder):
    rng = np.random.default_rng(0)
    samples = []
    for i, (speaker, start, end, words) in enumerate(TALK):
        facts = AudioFacts(sample_rate=16000, channels=1, duration_s=end - start)
        record = Sample(
            key=f"talk_{i:05d}",
            source=SourceRef(uri="/in/talk.wav", start_s=start, end_s=end, audio=facts, speaker=speaker),
            audio=AudioFacts(sample_rate=16000, channels=1, duration_s=end - start, format="FLAC"),
            transcript=RichTranscript.from_inline(f"<|speaker:0|>{words}", model_id="test"),
        )
        samples.append((record, rng.integers(0, CODES, size=(N, 5 + i), dtype=np.int16)))
    return write_shards(folder, samples, per_shard=len(samples)), samples


def read(config):
    (url,) = shard_urls(config.data)
    return read_shard(url, N, CODES, references=True, seed=0, epoch=0, counts=Counter(), dialogues=config.data)


def test_consecutive_turns_of_two_speakers_become_one_sample_with_their_turns_pauses_and_voices(tmp_path, tokenizer):
    index, segments = conversation(tmp_path)
    # every segment starts a dialogue; about three segments fit in 90 tokens
    config = tiny_config(index, tmp_path / "out", "data.dialogue_fraction=1.0", "data.max_tokens=90")
    samples = read(config)
    assert [s.key for s in samples] == ["talk_00000+2", "talk_00003+2"]
    first, second = samples
    assert first.text == "<|speaker:0|>hello there<|speaker:1|>hi alice<|speaker:0|>[pause] how are you"
    assert second.text == "<|speaker:0|>fine thanks<|speaker:1|>good to hear<|speaker:0|>[pause] see you"  # bob first
    assert np.array_equal(first.codes, np.concatenate([c for _, c in segments[:3]], axis=1))
    # a voice per speaker, from that speaker's other segments, named by the dialogue's speaker index
    alice, bob = ([c for r, c in segments[3:] if r.source.speaker == name] for name in ("alice", "bob"))
    (text0, codes0), (text1, codes1) = first.voices
    assert text0.startswith("<|speaker:0|>") and any(np.array_equal(codes0, c) for c in alice)
    assert text1.startswith("<|speaker:1|>") and any(np.array_equal(codes1, c) for c in bob)

    tok, ids = tokenizer
    example = build_example(tok, ids, N, first, 400)
    assert example.loss_mask.sum() == first.codes.shape[1] + 1  # the assistant's codes and <|im_end|>
    assert (example.inputs[0] >= ids.semantic_begin).sum() == first.codes.shape[1] + len(codes0[0]) + len(codes1[0])


def test_the_mix_ratio_keeps_single_segments(tmp_path):
    index, _ = conversation(tmp_path)
    single = read(tiny_config(index, tmp_path / "out"))
    assert [s.key for s in single] == [f"talk_{i:05d}" for i in range(6)]
    mixed = read(tiny_config(index, tmp_path / "out", "data.dialogue_fraction=0.5", "data.max_tokens=90"))
    assert any("+" in s.key for s in mixed) and any("+" not in s.key for s in mixed)
    assert sum(s.codes.shape[1] for s in mixed) == sum(s.codes.shape[1] for s in single)  # each segment once
