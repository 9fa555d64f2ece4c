"""The Dual-AR network on packed training rows: samples never see each other, both attention kernels agree,
activation checkpointing changes no gradient, and the S2-Pro configuration has the released size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.dual_ar.config import DualARConfig, StackConfig
from models.dual_ar.model import DualARTransformer

N, C, SEMANTIC = 4, 16, 40


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids oversubscription stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**changes) -> DualARConfig:
    slow = StackConfig(
        n_layer=2, dim=32, n_head=4, n_local_heads=2, head_dim=8, intermediate_size=48, attention_qk_norm=True
    )
    config = DualARConfig(
        slow=slow,
        fast=dataclasses.replace(slow, dim=24, n_head=3, n_local_heads=1, attention_qk_norm=False),
        vocab_size=64,
        codebook_size=C,
        num_codebooks=N,
        semantic_begin_id=SEMANTIC,
        semantic_end_id=SEMANTIC + C - 1,
        initializer_range=0.3,
    )
    return config.replace(**changes)


def tiny_model(**kwargs) -> DualARTransformer:
    model = DualARTransformer(tiny_config(), **kwargs)
    model.init_weights(0)
    return model


def sample(length: int, audio: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) [N+1, length]: text, then `audio` frames learned in both rows and codebooks."""
    g = torch.Generator().manual_seed(seed)
    full = torch.zeros(N + 1, length + 1, dtype=torch.long)
    full[0] = torch.randint(0, SEMANTIC, (length + 1,), generator=g)
    codes = torch.randint(0, C, (N, audio), generator=g)
    full[0, -audio - 1 : -1] = codes[0] + SEMANTIC
    full[1:, -audio - 1 : -1] = codes
    labels = full[:, 1:].clone()
    labels[:, : length - audio - 1] = -100
    return full[:, :-1], labels


def pack(*samples):
    inputs = torch.cat([s[0] for s in samples], dim=1)[None]
    labels = torch.cat([s[1] for s in samples], dim=1)[None]
    segments = torch.cat([torch.full((s[0].shape[1],), i) for i, s in enumerate(samples)])[None]
    return inputs, labels, segments


def test_dual_ar_packed_samples_do_not_see_each_other():
    model = tiny_model().eval()
    a, b = sample(12, 5, 0), sample(9, 4, 1)
    other_b = sample(9, 4, 2)  # every token and code of the second sample differs
    with torch.no_grad():
        out = model(*pack(a, b)[:2], segment_ids=pack(a, b)[2])
        changed = model(*pack(a, other_b)[:2], segment_ids=pack(a, other_b)[2])
        alone = model(a[0][None], a[1][None])
    m_a = int(model.is_semantic(a[1][0]).sum())
    torch.testing.assert_close(changed.token_logits[0, :12], out.token_logits[0, :12], atol=0, rtol=0)
    torch.testing.assert_close(changed.codebook_logits[:m_a], out.codebook_logits[:m_a], atol=0, rtol=0)
    assert not torch.allclose(changed.token_logits[0, 12:], out.token_logits[0, 12:])
    torch.testing.assert_close(out.token_logits[0, :12], alone.token_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.codebook_logits[:m_a], alone.codebook_logits, atol=1e-5, rtol=1e-5)


def test_dual_ar_positions_restart_per_packed_sample():
    from models.dual_ar.attention import positions_from_segments

    segments = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2], [5, 5, 5, 5, 5, 5, 5, 5, 5]])
    expected = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3], list(range(9))])
    assert torch.equal(positions_from_segments(segments), expected)


def test_dual_ar_flex_attention_matches_sdpa():
    sdpa, flex = tiny_model().eval(), tiny_model(attention="flex").eval()
    inputs, labels, segments = pack(sample(12, 5, 0), sample(9, 4, 1), sample(7, 3, 2))
    with torch.no_grad():
        a = sdpa(inputs, labels, segment_ids=segments)
        b = flex(inputs, labels, segment_ids=segments)
    torch.testing.assert_close(b.token_logits, a.token_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.codebook_logits, a.codebook_logits, atol=1e-5, rtol=1e-5)


def test_dual_ar_hidden_states_give_the_logits_chunk_by_chunk():
    model = tiny_model().eval()
    inputs, labels, segments = pack(sample(12, 5, 0), sample(9, 4, 1))
    with torch.no_grad():
        full = model(inputs, labels, segment_ids=segments)
        lean = model(inputs, labels, segment_ids=segments, token_logits=False)
    assert lean.token_logits is None
    chunks = torch.cat([model.token_logits(h) for h in lean.hidden.split(5, dim=1)], dim=1)
    torch.testing.assert_close(chunks, full.token_logits, atol=1e-6, rtol=1e-6)
    assert torch.equal(lean.codebook_labels, labels[0, 1:, lean.audio_mask[0]].T)


def test_dual_ar_activation_checkpointing_gives_the_same_gradients():
    inputs, labels, segments = pack(sample(12, 5, 0), sample(9, 4, 1))

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = tiny_model(activation_checkpointing=checkpointing).train()
        out = model(inputs, labels, segment_ids=segments)
        loss = torch.nn.functional.cross_entropy(out.token_logits[0], labels[0, 0], ignore_index=-100)
        loss = loss + torch.nn.functional.cross_entropy(
            out.codebook_logits.flatten(0, 1), out.codebook_labels.flatten()
        )
        loss.backward()
        return {n: p.grad for n, p in model.named_parameters()}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys() and all(g is not None for g in plain.values())
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)


def test_dual_ar_mlp_layers_keep_the_names_lora_targets():
    model = tiny_model()
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert {"wqkv", "wo", "w1", "w2", "w3"} <= names


def test_dual_ar_s2_pro_config_has_the_released_parameter_count():
    slow = StackConfig(
        n_layer=36, dim=2560, n_head=32, n_local_heads=8, head_dim=128, intermediate_size=9728, attention_qk_norm=True
    )
    config = DualARConfig(
        slow=slow,
        fast=dataclasses.replace(slow, n_layer=4, attention_qk_norm=False),
        vocab_size=155_776,
        codebook_size=4096,
        num_codebooks=10,
        semantic_begin_id=151_678,
        semantic_end_id=155_773,
        max_seq_len=32768,
    )
    with torch.device("meta"):
        model = DualARTransformer(config)
    assert sum(p.numel() for p in model.parameters()) == 4_561_852_416
    assert isinstance(model.fast_project_in, torch.nn.Identity)
    assert model.state_dict()["codebook_embeddings.weight"].shape == (40960, 2560)


def test_dual_ar_init_is_seeded():
    a, b, c = DualARTransformer(tiny_config()), DualARTransformer(tiny_config()), DualARTransformer(tiny_config())
    a.init_weights(3), b.init_weights(3), c.init_weights(4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.embeddings.weight, c.embeddings.weight)
