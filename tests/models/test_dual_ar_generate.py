"""Generation: batches give each item what it gets alone, <|im_end|> ends an item, RAS resamples repeats, and the
sampler filters in the reference's order."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.dual_ar.checkpoint import from_s2_checkpoint
from models.dual_ar.generate import generate
from models.dual_ar.prompt import Reference, build_prompt
from models.dual_ar.sampling import CounterNoise, SamplingParams, TorchNoise, candidates, draw, repetition_aware
from models.dual_ar.tiny import init_tiny
from models.dual_ar.tokens import TokenIds

N, C = 4, 16
GREEDY = SamplingParams(top_k=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny checkpoint whose weights are drawn wide (std 0.5), so that its distributions are far from uniform."""
    model, tokenizer = from_s2_checkpoint(
        init_tiny(tmp_path_factory.mktemp("tiny"), 0, num_codebooks=N, codebook_size=C, max_seq_len=512)
    )
    model.config = dataclasses.replace(model.config, initializer_range=0.5)
    model.init_weights(1)
    return model, tokenizer, TokenIds.from_tokenizer(tokenizer, C)


def prompts(tokenizer, ids):
    g = torch.Generator().manual_seed(0)
    voice = Reference("<|speaker:0|>a reference", torch.randint(0, C, (N, 6), generator=g))
    return [
        build_prompt(tokenizer, ids, N, "<|speaker:0|>Hi [laugh].", [voice]).tokens,
        build_prompt(tokenizer, ids, N, "short").tokens,
        build_prompt(
            tokenizer, ids, N, "<|speaker:1|>A rather longer line of text to say, with a [sigh] in it."
        ).tokens,
    ]


@pytest.mark.parametrize("noise", ["reference", "counter"])
def test_dual_ar_generate_batched_equals_one_by_one(tiny, noise):
    model, tokenizer, ids = tiny
    items = prompts(tokenizer, ids)
    assert len({p.shape[1] for p in items}) == 3  # different lengths: the batch is padded
    for sampling in (GREEDY, SamplingParams()):
        kwargs = {"im_end_id": ids.im_end, "max_new_tokens": 12, "sampling": sampling, "noise": noise}
        batched = generate(model, items, seed=[3, 4, 5], **kwargs)
        alone = [generate(model, [p], seed=s, **kwargs)[0] for p, s in zip(items, [3, 4, 5])]
        for b, a in zip(batched, alone):
            assert b.shape[0] == N and torch.equal(b, a)
        if sampling is GREEDY:  # one item ended on <|im_end|> while the others went on
            assert len({c.shape[1] for c in batched}) > 1


@pytest.mark.parametrize("noise", ["reference", "counter"])
def test_dual_ar_generate_is_reproducible_and_seeded(tiny, noise):
    model, tokenizer, ids = tiny
    items = prompts(tokenizer, ids)[:1]
    kwargs = {"im_end_id": ids.im_end, "max_new_tokens": 12, "noise": noise}
    first = generate(model, items, seed=1, **kwargs)[0]
    again = generate(model, items, seed=1, **kwargs)[0]
    others = [generate(model, items, seed=s, **kwargs)[0] for s in (2, 3)]
    assert torch.equal(first, again)
    assert any(not torch.equal(first, o) for o in others)
    assert first.dtype == torch.long and int(first.max()) < C and int(first.min()) >= 0


def test_dual_ar_generate_stops_at_im_end(tiny):
    """With <|im_end|>'s embedding row scaled up (the LM head is tied), the model says it first: no frame at all,
    while an item whose limit comes first returns exactly max_new_tokens frames."""
    model, tokenizer, ids = tiny
    items = prompts(tokenizer, ids)
    full = generate(model, items[:1], im_end_id=ids.im_end, max_new_tokens=5, sampling=GREEDY)[0]
    assert full.shape == (N, 5)
    weight = model.embeddings.weight
    saved = weight[ids.im_end].clone()
    with torch.no_grad():
        hidden = model(items[0][None]).hidden[0, -1]
        weight[ids.im_end] = hidden / hidden.norm() * 1e3
    try:
        ended = generate(model, items, im_end_id=ids.im_end, max_new_tokens=5, sampling=GREEDY)
    finally:
        with torch.no_grad():
            weight[ids.im_end] = saved
    assert ended[0].shape == (N, 0)


def test_dual_ar_generate_refuses_prompts_longer_than_the_context(tiny):
    model, tokenizer, ids = tiny
    too_long = torch.zeros(N + 1, model.config.max_seq_len, dtype=torch.long)
    with pytest.raises(ValueError, match="leaves no room"):
        generate(model, [too_long], im_end_id=ids.im_end)
    with pytest.raises(ValueError, match=r"rows \[5, T\]"):
        generate(model, [torch.zeros(3, 4, dtype=torch.long)], im_end_id=ids.im_end)


def test_dual_ar_ras_takes_the_second_sample_on_a_semantic_repeat():
    window = torch.tensor([[7, 8, 9], [7, 8, 9], [7, 8, 9], [-1, -1, -1]])
    token = torch.tensor([8, 5, 9, 8])
    fallback = torch.tensor([1, 2, 3, 4])
    semantic = torch.tensor([True, True, False, True])  # row 2's token is <|im_end|>: never resampled
    assert repetition_aware(token, fallback, window, semantic).tolist() == [1, 5, 9, 8]


def _dense(logits, **settings):
    probs, columns = candidates(logits, **settings)
    return torch.zeros_like(logits).scatter(-1, columns, probs)


def test_dual_ar_top_p_uses_untempered_probabilities_then_top_k_then_temperature():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    # top-p 0.85 on the untempered softmax keeps 0.5 and 0.3 (0.95 > 0.85 drops the third); a hot temperature,
    # applied after, flattens what is left but brings nothing back
    probs = _dense(logits, temperature=100.0, top_p=0.85, top_k=30)
    assert probs[0, 2:].tolist() == [0, 0] and probs[0, 0] == pytest.approx(0.5, abs=0.01)
    assert _dense(logits, temperature=1.0, top_p=1.0, top_k=1)[0].tolist() == [1, 0, 0, 0]
    # top-p's cumulative probability is over the whole distribution, not the top-k: 0.5 + 0.3 = 0.8 <= 0.9 keeps
    # the second token (renormalised over the top 2 it would be 1.0 > 0.9)
    assert _dense(logits, temperature=1.0, top_p=0.9, top_k=2)[0].tolist() == pytest.approx([0.625, 0.375, 0, 0])
    # the most likely token is kept even when it alone exceeds top_p
    assert _dense(logits, temperature=1.0, top_p=0.1, top_k=30)[0].tolist() == [1, 0, 0, 0]
    # temperature after filtering: 0.5 and 0.3 renormalised at T=0.5 -> 0.25/(0.25+0.09)
    assert _dense(logits, temperature=0.5, top_p=0.85, top_k=30)[0, 0] == pytest.approx(0.25 / 0.34, abs=1e-5)


@pytest.mark.parametrize("noise", [TorchNoise, CounterNoise])
def test_dual_ar_draw_gives_each_row_its_own_stream(noise):
    probs, columns = candidates(torch.zeros(2, 50), temperature=1.0, top_p=1.0, top_k=50)
    pair = draw(probs, columns, noise([1, 2]), 50)
    for row, seed in enumerate((1, 2)):
        assert pair[row] == draw(probs[:1], columns[:1], noise([seed]), 50)[0]
    # a stream goes on: the next draws of one seed differ, and are uniform over the 50 columns
    stream = noise([7])
    draws = torch.stack([draw(probs[:1], columns[:1], stream, 50)[0] for _ in range(5000)])
    counts = torch.bincount(draws, minlength=50).float()
    assert counts.min() > 50 and counts.max() < 150  # 100 expected each; 5 sigma is about +-50


def test_dual_ar_reference_noise_reads_the_uniforms_of_the_whole_distribution():
    columns = torch.tensor([[3, 0, 7]])
    full = torch.rand(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(TorchNoise([5]).uniform(columns, 10), full[columns])


def test_dual_ar_sampling_settings_are_checked():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="temperatures"):
        SamplingParams(temperature=0)
