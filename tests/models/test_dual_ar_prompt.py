"""The S2 prompt layout: what the rows hold, and that only the assistant's codes and final <|im_end|> are learned."""

from __future__ import annotations

import pytest
import torch

from models.dual_ar.prompt import IGNORE, Reference, build_prompt
from models.dual_ar.tokens import TokenIds, byte_level_tokenizer, extend_tokenizer

N, C = 4, 16


@pytest.fixture(scope="module")
def vocab():
    tokenizer = extend_tokenizer(byte_level_tokenizer(), C)
    return tokenizer, TokenIds.from_tokenizer(tokenizer, C)


def encode(tokenizer, *pieces: str) -> list[int]:
    return [i for p in pieces for i in tokenizer.encode(p, add_special_tokens=False)]


def test_dual_ar_prompt_inference_layout(vocab):
    tokenizer, ids = vocab
    ref_codes = torch.randint(0, C, (N, 5), generator=torch.Generator().manual_seed(0))
    text = "<|speaker:0|>Hello [laugh] there."
    prompt = build_prompt(tokenizer, ids, N, text, [Reference("how are you", ref_codes)])
    head = encode(
        tokenizer,
        "<|im_start|>system\n",
        "convert the provided text to speech reference to the following:\n\nText:\n",
        "<|speaker:0|>how are you",
        "\n\nSpeech:\n",
    )
    tail = encode(
        tokenizer, "<|im_end|>\n", "<|im_start|>user\n", text, "<|im_end|>\n", "<|im_start|>assistant\n<|voice|>"
    )
    rows = prompt.tokens
    assert rows.shape == (N + 1, len(head) + 5 + len(tail))
    assert rows[0].tolist() == head + (ref_codes[0] + ids.semantic_begin).tolist() + tail
    assert torch.equal(rows[1:, len(head) : len(head) + 5], ref_codes)
    assert rows[1:, : len(head)].abs().sum() == 0 and rows[1:, len(head) + 5 :].abs().sum() == 0
    assert prompt.audio_mask.sum() == 5 and not prompt.loss_mask.any()
    assert rows[0, -1] == ids.voice
    assert "[laugh]" in tokenizer.decode(rows[0].tolist())


def test_dual_ar_prompt_without_reference_and_with_several(vocab):
    tokenizer, ids = vocab
    plain = build_prompt(tokenizer, ids, N, "hi")
    assert plain.tokens[0].tolist()[
        : len(encode(tokenizer, "<|im_start|>system\n", "convert the provided text to speech<|im_end|>"))
    ] == encode(tokenizer, "<|im_start|>system\n", "convert the provided text to speech", "<|im_end|>")
    codes = [torch.zeros(N, 2, dtype=torch.long), torch.ones(N, 3, dtype=torch.long)]
    two = build_prompt(
        tokenizer, ids, N, "hi", [Reference("first", codes[0]), Reference("<|speaker:7|>second", codes[1])]
    )
    assert "<|speaker:0|>first\n<|speaker:7|>second" in tokenizer.decode(two.tokens[0].tolist())
    assert two.tokens[1:, two.audio_mask].tolist() == torch.cat(codes, dim=1).tolist()


def test_dual_ar_prompt_training_labels_learn_only_the_answer(vocab):
    tokenizer, ids = vocab
    g = torch.Generator().manual_seed(1)
    ref, target = torch.randint(0, C, (N, 5), generator=g), torch.randint(0, C, (N, 7), generator=g)
    sample = build_prompt(tokenizer, ids, N, "<|speaker:0|>hi", [Reference("ref", ref)], target_codes=target)
    tokens = sample.tokens
    assert sample.loss_mask.sum() == 8 and sample.loss_mask[-8:].all()  # 7 frames + <|im_end|>
    assert tokens[0, -1] == ids.im_end and torch.equal(tokens[1:, -8:-1], target)
    inputs, labels = sample.training_pair()
    assert torch.equal(inputs, tokens[:, :-1])
    learned = labels[0] != IGNORE
    assert learned.sum() == 8 and torch.equal(labels[0, learned], tokens[0, -8:])
    audio_labels = labels[1:, (labels[1:] != IGNORE).all(0)]
    assert torch.equal(audio_labels, target)  # the reference's frames are not learned, in any row
    assert (labels[1:, ~learned] == IGNORE).all() and (labels[1:, -1] == IGNORE).all()


@pytest.mark.parametrize(
    ("codes", "message"),
    [(torch.zeros(3, 4, dtype=torch.long), r"must be \[4, T\]"), (torch.full((4, 2), 16), r"must lie in 0\.\.15")],
)
def test_dual_ar_prompt_rejects_bad_codes_in_one_line(vocab, codes, message):
    tokenizer, ids = vocab
    with pytest.raises(ValueError, match=message) as err:
        build_prompt(tokenizer, ids, N, "hi", [Reference("r", codes)])
    assert "\n" not in str(err.value) and "reference 0" in str(err.value)
