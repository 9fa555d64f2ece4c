"""The loss of Eq. 2-4: codebook weights, exact masks, the reference's loss on the golden fixture, and the global
normalisation that makes any split of a global batch give the same gradient."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from schemas.training import DataConfig, LossConfig
from tests.training.tiny import N
from training.data import IGNORE, Loader
from training.losses import DualARLoss, codebook_weights, combine

GOLDEN = Path(__file__).parent.parent / "data" / "golden" / "dual_ar"


def batches(index, tokenizer, n: int, micro_batch: int = 1, **data) -> list:
    tok, ids = tokenizer
    config = DataConfig(**{"index": str(index), "seq_len": 512, "shuffle_buffer": 4, "num_workers": 0, **data})
    loader = Loader(config, tok, ids, N, micro_batch)
    return [next(loader) for _ in range(n)]


def counts(model, labels: list[torch.Tensor]) -> tuple[int, int]:
    return (
        sum(int((y[:, 0] != IGNORE).sum()) for y in labels),
        sum(int(model.is_semantic(y[:, 0]).sum()) for y in labels),
    )


def gradients(model, micro: list, config: LossConfig = LossConfig()) -> dict[str, torch.Tensor]:
    """Gradients of the global-batch loss over micro-batches, as the trainer accumulates them."""
    module = DualARLoss(model, codebook_weights(config, N), config.chunk_tokens)
    model.zero_grad()
    labels = [b.masked_labels() for b in micro]
    tokens, frames = counts(model, labels)
    for b, y in zip(micro, labels):
        combine(module(b.inputs, y, b.segment_ids), tokens, frames, config).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_codebook_weights_pretrain_sft_and_explicit():
    assert codebook_weights(LossConfig(), 4).tolist() == [1, 1, 1, 1]
    sft = codebook_weights(LossConfig(mode="sft", sft_decay=0.5), 4)
    assert sft.tolist() == [0, 1, 0.5, 0.25]
    explicit = LossConfig(mode="sft", codebook_weights=[2, 0, 1, 1])
    assert codebook_weights(explicit, 4).tolist() == [2, 0, 1, 1]
    with pytest.raises(ValueError, match="has 4 weights; the model has 10 codebooks"):
        codebook_weights(explicit, 10)


def test_changing_a_masked_label_changes_no_gradient_and_a_learned_one_does(shards, tokenizer, tiny_model):
    """Eq. 2: the system prompt, the reference (text and audio) and the user turn teach nothing."""
    [batch] = batches(shards, tokenizer, 1)
    masked = ~batch.loss_mask[0]
    reference_audio = masked & tiny_model.is_semantic(batch.labels[0, 0])
    assert reference_audio.sum() > 0 and masked.sum() > 100  # the sample has a reference voice
    before = gradients(tiny_model, [batch])

    generator = torch.Generator().manual_seed(0)
    perturbed = batch.labels.clone()
    perturbed[0, 0, masked] = torch.randint(0, 250, (int(masked.sum()),), generator=generator)
    perturbed[0, 1:, reference_audio] = torch.randint(0, 16, (N, int(reference_audio.sum())), generator=generator)
    batch.labels = perturbed
    after = gradients(tiny_model, [batch])
    assert all(torch.equal(before[n], after[n]) for n in before)

    learned = batch.loss_mask[0].nonzero()[0, 0]
    batch.labels[0, 1:, learned] = (batch.labels[0, 1:, learned] + 1) % 16  # another code for the first frame
    changed = gradients(tiny_model, [batch])
    assert not torch.equal(changed["fast_output.weight"], before["fast_output.weight"])


def test_any_split_of_a_global_batch_gives_the_same_loss_and_gradient(shards, tokenizer, tiny_model):
    split = batches(shards, tokenizer, 2, micro_batch=1, references=False)
    [whole] = batches(shards, tokenizer, 1, micro_batch=2, references=False)
    assert torch.equal(torch.cat([b.inputs for b in split]), whole.inputs)
    a, b = gradients(tiny_model, split), gradients(tiny_model, [whole])
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-7, rtol=1e-5)


def test_the_fast_loss_weighs_each_codebook_and_sft_drops_the_semantic_one(shards, tokenizer, tiny_model):
    [batch] = batches(shards, tokenizer, 1)
    config = LossConfig(mode="sft", sft_decay=0.5)
    weights = codebook_weights(config, N)
    with torch.no_grad():
        sums = DualARLoss(tiny_model, weights, 64)(batch.inputs, batch.masked_labels(), batch.segment_ids)
        out = tiny_model(batch.inputs, batch.masked_labels(), segment_ids=batch.segment_ids, token_logits=False)
    ce = F.cross_entropy(out.codebook_logits.flatten(0, 1), out.codebook_labels.flatten(), reduction="none")
    per_codebook = ce.view(-1, N).sum(0)
    torch.testing.assert_close(sums.per_codebook, per_codebook)
    torch.testing.assert_close(sums.fast, (per_codebook * weights).sum() / 1.75)  # weights 0, 1, 0.5, 0.25
    full = tiny_model.token_logits(out.hidden).flatten(0, 1)
    target = batch.masked_labels()[:, 0].flatten()
    torch.testing.assert_close(sums.slow, F.cross_entropy(full, target, reduction="sum"))  # chunked = whole


@pytest.fixture(scope="module")
def golden_model(tmp_path_factory):
    from models.dual_ar.checkpoint import from_s2_checkpoint
    from models.dual_ar.tokens import byte_level_tokenizer, extend_tokenizer, save_tokenizer

    folder = tmp_path_factory.mktemp("golden")
    for f in GOLDEN.iterdir():
        if f.name.startswith(("model", "config")):
            shutil.copy(f, folder)
    save_tokenizer(extend_tokenizer(byte_level_tokenizer(), 16), folder)
    # the reference's training forward does not scale the codebook embeddings
    return from_s2_checkpoint(folder, codebook_embedding_scale=1.0)[0]


@pytest.mark.parametrize("sample", ["a", "b"])
def test_the_pretraining_loss_is_the_references_on_its_golden_logits(golden_model, sample):
    """The reference's lit_module: CE of the token logits + CE of the codebook logits over all codebooks."""
    gold = load_file(GOLDEN / "golden.safetensors")
    tokens, labels = gold[f"train.{sample}.tokens"][None], gold[f"train.{sample}.labels"][None]
    token_logits, codebook_logits = gold[f"train.{sample}.token_logits"], gold[f"train.{sample}.codebook_logits"]
    semantic = golden_model.is_semantic(labels[0, 0])
    reference = F.cross_entropy(token_logits, labels[0, 0], ignore_index=IGNORE) + F.cross_entropy(
        codebook_logits.flatten(0, 1), labels[0, 1:, semantic].T.flatten()
    )
    config = LossConfig(chunk_tokens=3)
    n = golden_model.config.num_codebooks
    with torch.no_grad():
        sums = DualARLoss(golden_model, codebook_weights(config, n), config.chunk_tokens)(
            tokens, labels, torch.zeros_like(tokens[:, 0])
        )
    tokens_learned, frames = int((labels[0, 0] != IGNORE).sum()), int(semantic.sum())
    torch.testing.assert_close(combine(sums, tokens_learned, frames, config), reference, atol=1e-5, rtol=1e-5)


def test_eq2_as_printed_learns_the_user_turn_but_not_the_system_turn_with_its_weight(shards, tokenizer, tiny_model):
    """loss.learn=non_reference: m_t = 1 after the system turn (which holds the reference audio); lambda_text weighs
    the learned labels outside the assistant turn, so lambda_text = 0 is the released code's loss again."""
    tok, ids = tokenizer
    [batch] = batches(shards, tokenizer, 1)
    row = batch.inputs[0, 0]
    system_end = int((row == ids.im_end).nonzero()[0, 0])
    learned = batch.learned("non_reference")[0]
    first = batch.segment_ids[0] == 1
    assert not learned[: system_end + 1].any()  # the system turn (reference text and codes) teaches nothing
    assert (learned & first & ~batch.loss_mask[0]).any()  # the user turn's text does
    assert torch.equal(batch.learned("assistant"), batch.loss_mask)

    module = DualARLoss(tiny_model, codebook_weights(LossConfig(), N), 4096)
    with torch.no_grad():
        assistant = module(batch.inputs, batch.masked_labels(), batch.segment_ids)
        labels = batch.masked_labels("non_reference")
        unweighted = module(batch.inputs, labels, batch.segment_ids)
        zero = module(batch.inputs, labels, batch.segment_ids, batch.token_weights("non_reference", 0.0))
        half = module(batch.inputs, labels, batch.segment_ids, batch.token_weights("non_reference", 0.5))
    torch.testing.assert_close(zero.slow, assistant.slow)
    assert assistant.slow < half.slow < unweighted.slow
    torch.testing.assert_close(half.slow, (assistant.slow + unweighted.slow) / 2)
    assert batch.token_weights("assistant", 0.5) is None and batch.token_weights("non_reference", 1.0) is None
