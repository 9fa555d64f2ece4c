"""Generation: batches give each item what it gets alone, <|im_end|> ends an item, RAS resamples repeats, and the
sampler filters in the reference's order."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.dual_ar.checkpoint import from_s2_checkpoint
from models.dual_ar.generate import generate
from models.dual_ar.prompt import Reference, build_prompt
from models.dual_ar.sampling import SamplingParams, draw, filtered_probs, repetition_aware
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


def test_dual_ar_generate_batched_equals_one_by_one(tiny):
    model, tokenizer, ids = tiny
    items = prompts(tokenizer, ids)
    assert len({p.shape[1] for p in items}) == 3  # different lengths: the batch is padded
    for sampling in (GREEDY, SamplingParams()):
        batched = generate(model, items, im_end_id=ids.im_end, max_new_tokens=12, sampling=sampling, seed=[3, 4, 5])
        alone = [
            generate(model, [p], im_end_id=ids.im_end, max_new_tokens=12, sampling=sampling, seed=s)[0]
            for p, s in zip(items, [3, 4, 5])
        ]
        for b, a in zip(batched, alone):
            assert b.shape[0] == N and torch.equal(b, a)
        if sampling is GREEDY:  # one item ended on <|im_end|> while the others went on
            assert len({c.shape[1] for c in batched}) > 1


def test_dual_ar_generate_is_reproducible_and_seeded(tiny):
    model, tokenizer, ids = tiny
    items = prompts(tokenizer, ids)[:1]
    first = generate(model, items, im_end_id=ids.im_end, max_new_tokens=12, seed=1)[0]
    again = generate(model, items, im_end_id=ids.im_end, max_new_tokens=12, seed=1)[0]
    others = [generate(model, items, im_end_id=ids.im_end, max_new_tokens=12, seed=s)[0] for s in (2, 3)]
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


def test_dual_ar_top_p_uses_untempered_probabilities_then_top_k_then_temperature():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    # top-p 0.85 on the untempered softmax keeps 0.5 and 0.3 (0.95 > 0.85 drops the third); a hot temperature,
    # applied after, flattens what is left but brings nothing back
    probs = filtered_probs(logits, temperature=100.0, top_p=0.85, top_k=30)
    assert probs[0, 2:].tolist() == [0, 0] and probs[0, 0] == pytest.approx(0.5, abs=0.01)
    assert filtered_probs(logits, temperature=1.0, top_p=1.0, top_k=1)[0].tolist() == [1, 0, 0, 0]
    # the most likely token is kept even when it alone exceeds top_p
    assert filtered_probs(logits, temperature=1.0, top_p=0.1, top_k=30)[0].tolist() == [1, 0, 0, 0]
    # temperature after filtering: 0.5 and 0.3 renormalised at T=0.5 -> 0.25/(0.25+0.09)
    assert filtered_probs(logits, temperature=0.5, top_p=0.85, top_k=30)[0, 0] == pytest.approx(0.25 / 0.34, abs=1e-5)


def test_dual_ar_draw_uses_one_generator_per_row():
    probs = torch.full((2, 50), 1 / 50)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    pair = draw(probs, gens)
    assert pair[0] == draw(probs[:1], [torch.Generator().manual_seed(1)])[0]
    assert pair[1] == draw(probs[:1], [torch.Generator().manual_seed(2)])[0]


def test_dual_ar_sampling_settings_are_checked():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="temperatures"):
        SamplingParams(temperature=0)
