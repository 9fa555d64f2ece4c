"""Rollouts: the sampler restricted to the codec's codebooks (models.dual_ar.generate's codebook_sizes), the rows
the loss reads a rollout back from, the prompts and seeds a step takes, prompts from JSONL with real reference audio,
and the waveform cache under the scorer: every rollout decoded once for all rewards."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from models.dual_ar.generate import generate
from models.dual_ar.sampling import SamplingParams
from schemas.grpo import DurationConfig, PromptsConfig
from tests.training.grpo.conftest import ACOUSTIC, PROMPTS, SEMANTIC, write_prompts
from training.grpo.rewards import DurationReward
from training.grpo.rollout import (
    Prompt,
    PromptError,
    RolloutGenerator,
    WaveformCache,
    content_key,
    load_prompts,
    rollout_seeds,
    step_prompts,
)
from training.grpo.scoring import NO_AUDIO, Scorer

SIZES = [SEMANTIC, ACOUSTIC, ACOUSTIC, ACOUSTIC]
UNIFORM = SamplingParams(temperature=1.0, top_p=1.0, top_k=64, ras_window=0)


def _prompt_rows(generator: RolloutGenerator) -> torch.Tensor:
    return generator.encode(Prompt("p", "<|speaker:0|>Some words to say.")).tokens


def test_the_sampler_draws_only_codes_the_codec_decodes(tiny_model, tokenizer):
    tok, ids = tokenizer
    model = tiny_model.eval()
    rows = _prompt_rows(RolloutGenerator(model, tok, ids, SIZES, UNIFORM, 8))
    kwargs = dict(im_end_id=ids.im_end, max_new_tokens=24, sampling=UNIFORM, seed=list(range(16)))
    free = generate(model, [rows] * 16, **kwargs)
    restricted = generate(model, [rows] * 16, codebook_sizes=SIZES, **kwargs)
    assert max(int(c[1:].max()) for c in free if c.numel()) >= ACOUSTIC  # the model's own range is 16 wide
    codes = torch.cat([c for c in restricted if c.numel()], dim=1)
    assert int(codes[0].max()) < SEMANTIC and int(codes[1:].max()) < ACOUSTIC
    # restricted and renormalised, not clamped: the top code is as frequent as the others, not a pile-up
    top = (codes[1:] == ACOUSTIC - 1).float().mean().item()
    assert 0.5 / ACOUSTIC < top < 2.0 / ACOUSTIC
    # the full sizes change nothing: the same draws as without them
    full = generate(model, [rows] * 16, codebook_sizes=[SEMANTIC] * 4, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(full, free))
    with pytest.raises(ValueError, match="codebook_sizes must be 4 sizes in 1..16"):
        generate(model, [rows], codebook_sizes=[16, 8, 8], **kwargs | {"seed": 0})
    with pytest.raises(ValueError, match="codebook_sizes"):
        generate(model, [rows], codebook_sizes=[16, 8, 8, 32], **kwargs | {"seed": 0})


def test_training_rows_hold_exactly_the_sampled_tokens(tiny_model, tokenizer):
    tok, ids = tokenizer
    generator = RolloutGenerator(tiny_model.eval(), tok, ids, SIZES, UNIFORM, 6)
    rollouts = generator.rollouts([Prompt("p", "<|speaker:0|>Some words to say.")] * 12, list(range(12)))
    assert {r.ended for r in rollouts} == {True, False}  # both kinds among these seeds
    prompt_len = _prompt_rows(generator).shape[1]
    for r in rollouts:
        assert r.frames == (r.codes.shape[1]) and (r.ended or r.frames == 6)
        inputs, labels = generator.training_pair(r)
        learned = labels[0] != -100
        assert int(learned.sum()) == r.frames + r.ended
        assert torch.equal(labels[0, learned][: r.frames], torch.as_tensor(r.codes[0]) + ids.semantic_begin)
        assert (int(labels[0, learned][-1]) == ids.im_end) == r.ended
        assert torch.equal(labels[1:, learned][:, : r.frames], torch.as_tensor(r.codes))
        assert inputs.shape[1] == prompt_len + r.frames + r.ended - 1


def test_steps_take_every_prompt_once_per_epoch_and_seeds_are_distinct():
    order = [step_prompts(5, s, 2, seed=3) for s in range(5)]  # 10 positions = 2 epochs of 5 prompts
    flat = [i for o in order for i in o]
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:]) == list(range(5))
    assert order == [step_prompts(5, s, 2, seed=3) for s in range(5)] and flat != [
        i for s in range(5) for i in step_prompts(5, s, 2, seed=4)
    ]
    seeds = [s for step in range(3) for slot in range(2) for s in rollout_seeds(0, step, slot, 8)]
    assert len(set(seeds)) == 48 and seeds[:8] == rollout_seeds(0, 0, 0, 8)


def test_jsonl_prompts_carry_real_reference_voices(tiny_codec, tmp_path):
    path = write_prompts(tmp_path / "p.jsonl")
    prompts = load_prompts(PromptsConfig(jsonl=str(path)), tiny_codec, 4, SEMANTIC, seed=0)
    assert [p.text for p in prompts] == [p["text"] for p in PROMPTS]
    first = prompts[0]
    audio, rate = soundfile.read(PROMPTS[0]["reference_audio"], dtype="float32")
    assert first.reference_rate == rate == 16000 and np.array_equal(first.reference_audio, audio)
    assert np.array_equal(first.reference_codes, tiny_codec.encode([audio], rate)[0])
    assert first.reference_codes.shape == (4, 34) and first.reference_codes[1:].max() < ACOUSTIC  # 1.57 s
    assert prompts[2].reference_codes is None and prompts[2].references == []
    assert len(load_prompts(PromptsConfig(jsonl=str(path), limit=2), tiny_codec, 4, SEMANTIC, seed=0)) == 2
    bad = [
        ('{"text": ""}', "non-empty text"),
        ('{"text": "hi", "speaker": 1}', "unknown keys speaker"),
        ('{"text": "hi", "reference_audio": "a.wav"}', "go together"),
        ('{"text": "hi", "reference_audio": "a.wav", "reference_text": 3}', "must be strings"),
        ('{"text": "hi", "reference_audio": "missing.wav", "reference_text": "x"}', "missing.wav"),
        ("not json", "not JSON"),
    ]
    for line, reason in bad:
        (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n' + line + "\n")
        with pytest.raises(PromptError, match=rf"bad\.jsonl:2: .*{reason}"):
            load_prompts(PromptsConfig(jsonl=str(tmp_path / "bad.jsonl")), tiny_codec, 4, SEMANTIC, seed=0)


def test_every_rollout_is_decoded_once_for_all_rewards(tiny_model, tokenizer, tiny_codec):
    tok, ids = tokenizer
    generator = RolloutGenerator(tiny_model.eval(), tok, ids, SIZES, UNIFORM, 8)
    reference = np.random.default_rng(0).integers(0, ACOUSTIC, (4, 10))  # a voice given as codes (shards)
    prompt = Prompt("p", "<|speaker:0|>Words.", reference_text="ref", reference_codes=reference)
    group = generator.rollouts([prompt] * 6, [5, 6, 7, 5, 8, 9])  # seed 5 twice: the same codes twice
    assert content_key(group[0].codes) == content_key(group[3].codes.astype(np.int16))
    with_audio = [r for r in group if r.frames]
    distinct = {content_key(r.codes) for r in with_audio}
    cache = WaveformCache(tiny_codec)
    rewards = {"short": DurationReward(DurationConfig(target_s=0.2)), "long": DurationReward(DurationConfig())}
    scorer = Scorer(rewards, {"short": 1.0, "long": 0.5}, cache)
    try:
        scores = scorer.submit(group).result()
        assert scores.decoded == cache.decoded == len(distinct) + 1  # + the reference voice
        assert cache.hits == len(with_audio) - len(distinct)
        again = scorer.submit(group).result()  # the same rollouts once more: nothing is decoded again
        assert again.decoded == 0 and cache.decoded == len(distinct) + 1
    finally:
        scorer.close()
    for r, result in zip(group, scores.results):
        if not r.frames:
            assert result.error == NO_AUDIO and result.score == 0.0
            continue
        seconds = r.frames * 2048 / 44100
        c = result.components  # each reward's score under its name, and its components (here both 'duration.*')
        assert c["duration.seconds"] == pytest.approx(seconds)
        assert c["short"] == pytest.approx(min(1.0, seconds / 0.2)) and c["long"] == pytest.approx(seconds)
        assert result.score == pytest.approx(c["short"] + 0.5 * c["long"])
    assert scores.started <= scores.finished


def test_shard_prompts_take_another_segment_of_the_voice_as_reference(tiny_codec, tmp_path):
    from tests.training.tiny import make_samples, write_shards

    samples = make_samples(8, num_codebooks=4, codebook_size=ACOUSTIC, speaker=True)  # 2 shards x 2 speakers x 2
    index = write_shards(tmp_path, samples, per_shard=4)
    prompts = load_prompts(PromptsConfig(index=str(index)), tiny_codec, 4, SEMANTIC, seed=0)
    texts = {record.key: record.transcript.render() for record, _ in samples}
    codes = {record.key: c for record, c in samples}
    assert sorted(p.key for p in prompts) == sorted(texts) and all(p.text == texts[p.key] for p in prompts)
    for p in prompts:  # the reference: another sample of the same speaker and shard, as codes (decoded for R_SIM)
        other = [k for k, c in codes.items() if k != p.key and np.array_equal(c, p.reference_codes)]
        assert p.reference_audio is None and len(other) == 1 and p.reference_text == texts[other[0]]
    assert [p.key for p in load_prompts(PromptsConfig(index=str(index), limit=2), tiny_codec, 4, SEMANTIC, 0)] == [
        p.key for p in prompts[:2]
    ]


@pytest.mark.parametrize("sampling", [UNIFORM, SamplingParams()], ids=["top_p=1", "reference API"])
def test_a_steps_batch_gives_each_rollout_what_it_gets_alone(tiny_model, tokenizer, sampling):
    tok, ids = tokenizer
    generator = RolloutGenerator(tiny_model.eval(), tok, ids, SIZES, sampling, 10)
    short, long = Prompt("a", "<|speaker:0|>Hi."), Prompt("b", "<|speaker:1|>A much longer line [laugh] to say here.")
    prompts, seeds = [short] * 3 + [long] * 3, rollout_seeds(0, 0, 0, 3) + rollout_seeds(0, 0, 1, 3)
    batched = generator.rollouts(prompts, seeds)  # two prompts of different lengths: left-padded together
    alone = [generator.rollouts([p], [s])[0] for p, s in zip(prompts, seeds)]
    assert len({r.frames for r in batched}) > 1  # some ended early while others went on
    for b, a in zip(batched, alone):
        assert np.array_equal(b.codes, a.codes) and b.ended == a.ended and b.seed == a.seed
