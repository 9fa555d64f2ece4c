"""from_qwen3: a transformers Qwen3 checkpoint becomes a Dual-AR model whose text logits are Qwen3's (which proves
the fused qkv rows and the RoPE pairing), with the S2 vocabulary laid out as S2-Pro's."""

from __future__ import annotations

import pytest
import torch

from models.dual_ar.qwen3 import from_qwen3, rotate_half_to_interleaved
from models.dual_ar.tokens import (
    AUDIO_PAD,
    EOS,
    IM_END,
    IM_START,
    PAD,
    TokenIds,
    byte_level_tokenizer,
    extend_tokenizer,
    padded_vocab_size,
    semantic_token,
)

TEXT = "<|im_start|>user\nHello there, [laugh] <|speaker:1|>how are you?<|im_end|>"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_tiny_qwen3(folder, tie: bool):
    """A tiny random Qwen3ForCausalLM with our byte-level base tokenizer, norms and all weights far from their init."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = byte_level_tokenizer()
    config = Qwen3Config(
        vocab_size=320,  # padded past the tokenizer's 259 tokens, as Qwen3's 151,936 rows are past its 151,669
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.3 * noise if "norm" in name else 0.3 * noise)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


@pytest.mark.parametrize("tie", [True, False])
def test_dual_ar_qwen3_text_logits_equal_transformers(tmp_path, tie):
    qwen, base = save_tiny_qwen3(tmp_path, tie)
    model, tokenizer = from_qwen3(str(tmp_path), num_codebooks=4, codebook_size=16, fast_layers=1)
    ids = torch.tensor(base.encode(TEXT, add_special_tokens=False))
    assert ids.tolist() == tokenizer.encode(TEXT, add_special_tokens=False)  # text ids are kept
    rows = torch.zeros(model.config.num_codebooks + 1, len(ids), dtype=torch.long)
    rows[0] = ids
    with torch.no_grad():
        expected = qwen(ids[None]).logits[0]
        ours = model(rows[None]).token_logits[0]
    n_text = len(base)
    torch.testing.assert_close(ours[:, :n_text], expected[:, :n_text], atol=1e-5, rtol=1e-5)
    assert expected.abs().max() > 1  # logits far from zero: a wrong pairing would show


def test_dual_ar_qwen3_vocabulary_and_new_rows(tmp_path):
    save_tiny_qwen3(tmp_path, tie=True)
    model, tokenizer = from_qwen3(str(tmp_path), num_codebooks=4, codebook_size=16, seed=7)
    again, _ = from_qwen3(str(tmp_path), num_codebooks=4, codebook_size=16, seed=7)
    other, _ = from_qwen3(str(tmp_path), num_codebooks=4, codebook_size=16, seed=8)
    ids = TokenIds.from_tokenizer(tokenizer, 16)
    c = model.config
    assert (ids.pad, ids.semantic_begin, ids.semantic_end, c.vocab_size) == (259, 268, 283, 320)
    assert (
        c.semantic_begin_id,
        c.semantic_end_id,
        c.rope_dtype,
        c.slow.attention_qk_norm,
        c.fast.attention_qk_norm,
    ) == (268, 283, "float32", True, False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    new_rows = model.embeddings.weight[259:]
    assert not torch.equal(new_rows, other.embeddings.weight[259:])
    assert torch.equal(model.embeddings.weight[:259], other.embeddings.weight[:259])
    assert not torch.equal(model.fast_output.weight, other.fast_output.weight)
    # drawn from the text rows' distribution: on the scale of the text rows, not of the 0.02 init
    text_rows = model.embeddings.weight[:259]
    assert 0.5 < new_rows.std() / text_rows.std() < 2
    assert (new_rows.mean(0) - text_rows.mean(0)).abs().mean() < 3 * text_rows.std() / 61**0.5


def test_dual_ar_qwen3_sized_tokenizer_gets_the_s2_pro_ids():
    """Qwen3's tokenizer: 151,643 text tokens, then its specials to 151,668. The S2 tokens land where S2-Pro's are."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(151_643)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")))
    tokenizer.add_tokens([EOS, IM_START, IM_END] + [f"<|qwen:{i}|>" for i in range(23)], special_tokens=True)
    assert (len(tokenizer), tokenizer.convert_tokens_to_ids(IM_END)) == (151_669, 151_645)
    extend_tokenizer(tokenizer)
    ids = TokenIds.from_tokenizer(tokenizer, 4096)
    assert (ids.pad, tokenizer.convert_tokens_to_ids(AUDIO_PAD), ids.semantic_begin, ids.semantic_end) == (
        151_669,
        151_677,
        151_678,
        155_773,
    )
    assert (
        tokenizer.convert_tokens_to_ids(PAD) == 151_669
        and tokenizer.convert_tokens_to_ids(semantic_token(4095)) == 155_773
    )
    assert padded_vocab_size(len(tokenizer)) == 155_776


def test_dual_ar_qwen3_rope_reordering_maps_half_pairs_to_interleaved_pairs():
    rows = torch.arange(16.0)[:, None]  # two heads of head_dim 8
    assert rotate_half_to_interleaved(rows, 8)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
